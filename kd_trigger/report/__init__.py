"""Reports for people: plots, Markdown and HTML."""
