"""Date and time formats for the project's pages (settings.FORMAT_MODULE_PATH)."""
