"""Reading an archive: sniff, decompress, walk the tar, recognise the layout."""
