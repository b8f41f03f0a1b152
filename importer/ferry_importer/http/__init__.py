"""The importer's own HTTP API: the app, its dependencies, its routes."""
