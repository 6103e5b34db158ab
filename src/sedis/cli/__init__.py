"""The sedis command line: thin commands that parse, call the services and render."""
