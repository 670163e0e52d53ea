"""The command line: argument parsing (``main``), the one-shot commands and the demo."""
