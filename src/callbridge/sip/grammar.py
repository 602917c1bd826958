"""The pieces of the RFC 3261 and RFC 4566 grammars the parsers need, with the ABNF beside each.

Only what we check is here: a full SIP grammar would reject messages that
real phones send and we can serve.

Where the ABNF says DIGIT it means the ASCII digits 0-9 (RFC 5234 B.1:
``DIGIT = %x30-39``). Python's ``\\d`` and ``str.isdigit()`` also take "٣"
and "²" (the second of which ``int()`` refuses), so every regex here spells
``[0-9]`` and is compiled with ``re.ASCII``, and every run of digits read
as a number has a bound, so that ``int()`` sees neither a stranger's digit
nor a 5,000-digit number (which it refuses for its length).
"""

from __future__ import annotations

import re

# DIGIT = %x30-39 (RFC 5234 B.1)
DIGIT = "[0-9]"

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE = re.compile(f"^{TOKEN}$", re.ASCII)

# Method = INVITEm / ACKm / OPTIONSm / BYEm / CANCELm / REGISTERm / extension-method
# extension-method = token
METHOD_RE = TOKEN_RE

# Request-Line = Method SP Request-URI SP SIP-Version CRLF
# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT
REQUEST_LINE_RE = re.compile(rf"^({TOKEN}) (\S+) SIP/({DIGIT}+\.{DIGIT}+)$", re.ASCII)

# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
# Status-Code = 3DIGIT ; Reason-Phrase = *(reserved / unreserved / escaped / UTF8... / SP / HTAB)
STATUS_LINE_RE = re.compile(rf"^SIP/({DIGIT}+\.{DIGIT}+) ([1-6]{DIGIT}{DIGIT}) ?(.*)$", re.ASCII)

# message-header: header-name HCOLON header-value ; HCOLON = *( SP / HTAB ) ":" SWS
HEADER_LINE_RE = re.compile(rf"^({TOKEN})[ \t]*:[ \t]*(.*)$", re.ASCII)

# CSeq = "CSeq" HCOLON 1*DIGIT LWS Method
# (the number "MUST be expressible as a 32-bit unsigned integer" and be
# "less than 2**31" in a request, section 8.1.1.5: ten digits at most)
CSEQ_RE = re.compile(rf"^({DIGIT}{{1,10}})[ \t]+({TOKEN})$", re.ASCII)

# Content-Length = ( "Content-Length" / "l" ) HCOLON 1*DIGIT
# Max-Forwards = "Max-Forwards" HCOLON 1*DIGIT
# (1*DIGIT is unbounded; ten digits hold any length or count we could accept.
# The new patterns end in \Z: "$" also matches before a final newline.)
DIGITS_RE = re.compile(rf"^{DIGIT}{{1,10}}\Z", re.ASCII)

# via-parm = sent-protocol LWS sent-by *( SEMI via-params )
# sent-protocol = protocol-name SLASH protocol-version SLASH transport
# SLASH = SWS "/" SWS ; SWS = [LWS] ; LWS = [*WSP CRLF] 1*WSP (folds are undone first)
VIA_RE = re.compile(
    rf"^SIP[ \t]*/[ \t]*({DIGIT}+\.{DIGIT}+)[ \t]*/[ \t]*([A-Za-z]+)[ \t]+([^;\s]+)[ \t]*(;.*)?$",
    re.ASCII,
)

# sent-by = host [ COLON port ] ; port = 1*DIGIT
# SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
# hostport = host [ ":" port ]
URI_RE = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):"
    r"(?:(?P<user>[^@;?]*)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:;?]+)?"
    rf"(?::(?P<port>{DIGIT}{{1,5}}))?"
    r"(?P<params>;[^?]*)?"
    r"(?:\?(?P<headers>.*))?$",
    re.ASCII,
)
PORT_RE = re.compile(rf"^{DIGIT}{{1,5}}\Z", re.ASCII)

# The magic cookie of RFC 3261 branches (section 8.1.1.7).
BRANCH_COOKIE = "z9hG4bK"

# -- SDP (RFC 4566 section 9) -----------------------------------------------

# media-field = %x6d "=" media SP port ["/" integer] SP proto 1*(SP fmt) CRLF
# port = 1*DIGIT (a port is 0..65535: five digits at most, the range is checked after)
SDP_PORT_RE = re.compile(rf"^({DIGIT}{{1,5}})(?:/{DIGIT}{{1,5}})?\Z", re.ASCII)

# An RTP/AVP fmt is a payload type, 0..127 (RFC 3551 section 3).
SDP_PAYLOAD_TYPE_RE = re.compile(rf"^{DIGIT}{{1,3}}\Z", re.ASCII)

# a=rtpmap:<payload type> <encoding name>/<clock rate> [/<encoding parameters>]
SDP_RTPMAP_RE = re.compile(
    rf"^({DIGIT}{{1,3}}) +([^/ ]+)/({DIGIT}{{1,10}})(?:/(\S*))?\Z",
    re.ASCII,
)

# a=fmtp:<format> <format specific parameters>
SDP_FMTP_RE = re.compile(rf"^({DIGIT}{{1,3}})(?: +(.*))?\Z", re.ASCII)

# a=ptime:<packet time> (milliseconds; RFC 4566 section 6 shows an integer)
SDP_PTIME_RE = re.compile(rf"^{DIGIT}{{1,5}}\Z", re.ASCII)
