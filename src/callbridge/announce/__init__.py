"""The announcement: a press release, an HTML page, Markdown and a calendar file for one event."""
