"""Email to registrants: an outbox in the database, a sender with retries, the messages' templates.

``core`` decides (pure, ``now`` given), ``compose`` renders a message,
``smtp`` talks to the relay (aiosmtplib), ``planner`` finds the reminders
and replay notices that are due, ``worker`` runs it all in the web app's
event loop. See ``worker`` for what is sent exactly once and what at least once.
"""
