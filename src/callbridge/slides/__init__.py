"""Slides: the presenters' deck, rendered for the webcast, and the moments each slide was shown."""
