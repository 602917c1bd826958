"""The SIP proxy in front of the bridge nodes: Kamailio, configured and run by callbridge.

``kamailio`` turns a ``Proxy`` into the files and command line of one
Kamailio (pure); ``run`` runs it. The routing script itself is
``deploy/kamailio/kamailio.cfg``.
"""
