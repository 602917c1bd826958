"""The pieces of the RFC 3261 grammar the parser needs, with the ABNF beside each.

Only what we check is here: a full SIP grammar would reject messages that
real phones send and we can serve.
"""

from __future__ import annotations

import re

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE = re.compile(f"^{TOKEN}$")

# Method = INVITEm / ACKm / OPTIONSm / BYEm / CANCELm / REGISTERm / extension-method
# extension-method = token
METHOD_RE = TOKEN_RE

# Request-Line = Method SP Request-URI SP SIP-Version CRLF
# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT
REQUEST_LINE_RE = re.compile(rf"^({TOKEN}) (\S+) SIP/(\d+\.\d+)$")

# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
# Status-Code = 3DIGIT ; Reason-Phrase = *(reserved / unreserved / escaped / UTF8... / SP / HTAB)
STATUS_LINE_RE = re.compile(r"^SIP/(\d+\.\d+) ([1-6]\d\d) ?(.*)$")

# message-header: header-name HCOLON header-value ; HCOLON = *( SP / HTAB ) ":" SWS
HEADER_LINE_RE = re.compile(rf"^({TOKEN})[ \t]*:[ \t]*(.*)$")

# CSeq = "CSeq" HCOLON 1*DIGIT LWS Method
CSEQ_RE = re.compile(rf"^(\d{{1,10}})\s+({TOKEN})$")

# via-parm = sent-protocol LWS sent-by *( SEMI via-params )
# sent-protocol = protocol-name SLASH protocol-version SLASH transport
VIA_RE = re.compile(r"^SIP\s*/\s*(\d+\.\d+)\s*/\s*([A-Za-z]+)\s+([^;\s]+)\s*(;.*)?$")

# The magic cookie of RFC 3261 branches (section 8.1.1.7).
BRANCH_COOKIE = "z9hG4bK"
