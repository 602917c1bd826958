"""The cache tier in front of the webcast's origin: Varnish (and hitch for TLS), run and configured.

``varnish`` turns a ``CacheNode`` into the files and command lines of one
cache node (pure); ``node`` runs them. The VCL itself is
``deploy/varnish/callbridge.vcl``.
"""
