"""Transcripts of calls: speech engines, the offline pass over a recording, live captions'
decoding, captions, search and word error rate.

Import the modules themselves (``transcript.model`` for the types and search,
``transcript.transcribe`` for the offline pass): this package imports nothing,
so a module that needs the types does not load the speech engines.
"""
