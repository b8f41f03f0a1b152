"""ferry's hub: resumable uploads, dispatch to lab hosts, verified callbacks, an event log and Socket.IO."""

__version__ = "0.1.0"
