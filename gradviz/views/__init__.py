"""Views read a finished Graph and show it; they never compute derivatives."""
