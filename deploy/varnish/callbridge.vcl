vcl 4.1;
# callbridge's cache tier: Varnish in front of the LL-HLS origin (`callbridge serve`).
#
# What it does, and why (deploy/README.md has the set-ups):
# - Live LL-HLS: parts, segments and the init segment are immutable and cached.
#   Blocking playlist reloads (_HLS_msn/_HLS_part) are cached per blocking key:
#   every listener asking for the same next part waits on Varnish's waiting list
#   behind ONE origin request, and all are answered the moment it returns (nginx's
#   proxy_cache_lock would re-check them only every 500 ms).
# - The registration gate holds here. Before a webcast file or status is served,
#   the listener's cookie (cb_wc_<event>) is read here, once, by one strict rule
#   (callbridge_gate_cookie; the origin's callbridge.web.gate_cookie is its twin):
#   a malformed, oddly spaced, quoted, re-cased, encoded or duplicate gate cookie
#   is refused (403), never passed on. The value read is the cache key of the
#   origin's /webcast/<event>/access answer (kept for minutes) and goes to the
#   origin in X-CB-Gate-Cookie, instead of the Cookie header: the origin decides
#   on that value alone, names it in X-CB-Gate-Decided, and an answer naming
#   another is not kept. An unregistered browser gets 403 from this tier, and
#   the media itself is cached without any per-listener part in its key, so the
#   crowd shares one copy.
# - TTLs come from the origin's Surrogate-Control (meant for this tier only and
#   removed here); the browser sees the origin's own Cache-Control. A replay's
#   TTL never reaches past its replay window, so 410 Gone shows on time.
# - Nothing is served stale (grace 0): a live playlist must be the newest.
# - Bad requests stop here: path traversal, over-long URLs and live/replay
#   queries other than a well-formed _HLS_msn/_HLS_part get 4xx, never cached
#   as good answers, and junk query strings cannot bust the cache.
#
# `backend.vcl` beside this file names the origin (callbridge writes it from
# --origin; deploy/README.md shows one written by hand).

import std;
import cookie;

include "backend.vcl";

sub vcl_recv {
    if (req.restarts == 0) {
        # Set only by this VCL, between the access check and the real request.
        unset req.http.X-CB-Access;
        unset req.http.X-CB-Url;
        unset req.http.X-CB-Event;
        unset req.http.X-CB-Cookie;
        unset req.http.X-CB-Gate-Cookie;
        if (req.url ~ "^.{2049}") {
            return (synth(414, "URI Too Long"));
        }
        if (req.url ~ "(?i)(/|%2f)(\.|%2e)(\.|%2e)(/|%2f|\?|$)" || req.url ~ "(?i)%00|\\") {
            return (synth(400, "Bad path"));
        }
    }
    if (req.method != "GET" && req.method != "HEAD") {
        # Registration, beacons, the console, logins: always the origin's.
        return (pass);
    }
    if (req.url ~ "^/webcast/[0-9]{1,12}/(live|replay)/") {
        if (req.url ~ "\?") {
            set req.url = std.querysort(req.url);
            # Only LL-HLS's own query is known; _HLS_skip is dropped (no delta
            # playlists here, so the answer is the same without it).
            set req.url = regsuball(req.url, "([?&])_HLS_skip=(YES|v2)(&|$)", "\1");
            set req.url = regsub(req.url, "[?&]$", "");
            if (req.url ~ "\?" && req.url !~ "^[^?]*/live/[A-Za-z0-9_.-]+\.m3u8\?_HLS_msn=[0-9]{1,12}(&_HLS_part=[0-9]{1,6})?$") {
                return (synth(400, "Unexpected query"));
            }
        }
        call callbridge_gate;
        # Hashed without the cookie (vcl_hash): one copy for the crowd. The
        # cookie still goes with the one fetch, whose listener passed the check.
        return (hash);
    }
    if (req.url ~ "^/webcast/[0-9]{1,12}/(replay\.m4a|captions\.vtt|transcript\.(txt|html|docx|pdf))$") {
        call callbridge_gate;
        return (hash);
    }
    if (req.url ~ "^/webcast/[0-9]{1,12}/slides/[0-9]{1,4}\.png$") {
        # The deck's images: one copy for the crowd, like the media.
        call callbridge_gate;
        return (hash);
    }
    if (req.url ~ "^/api/events/[0-9]{1,12}/(webcast|slides)$") {
        # The status says whether this browser may listen: cached once per
        # access answer (granted, refused), never per listener.
        call callbridge_gate;
        return (hash);
    }
    if (req.url ~ "^/webcast/[0-9]{1,12}/access$") {
        # Asked by hand: keyed, and answered, on the cookie as the gate reads it.
        call callbridge_gate_cookie;
        return (hash);
    }
    if (req.url ~ "^/static/") {
        unset req.http.Cookie;
        return (hash);
    }
    # Pages carry a per-browser CSRF token and cookie: the origin's.
    return (pass);
}

# The access check: first ask /webcast/<event>/access (cached per gate cookie
# value), then restart with the original URL and the answer in X-CB-Access.
sub callbridge_gate {
    if (!req.http.X-CB-Access) {
        set req.http.X-CB-Url = req.url;
        call callbridge_gate_cookie;
        set req.url = "/webcast/" + req.http.X-CB-Event + "/access";
        return (hash);
    }
    if (req.url !~ "^/api/" && req.http.X-CB-Access != "204") {
        if (req.http.X-CB-Access == "403") {
            return (synth(403, "Register on the webcast page to listen"));
        }
        return (synth(std.integer(req.http.X-CB-Access, 503)));
    }
}

# The gate's cookie, read once, here: X-CB-Cookie gets the value of
# cb_wc_<event> ("" for none), the key of the access answer and the value the
# origin decides on. The rule (callbridge.web.gate_cookie reads by the same one):
# every Cookie header joined with "; "; if anything in it could name a gate
# cookie to some parser ("cb_wc" in any case, "_" also as %5F), every such crumb
# must be exactly cb_wc_<event>=<token>.<32 hex>, at the start or after "; " and
# ending at ";" or the end, and each name must come once. Anything else is
# refused: a cookie read one way here and another at the origin is how the gate
# was once opened for everyone.
sub callbridge_gate_cookie {
    set req.http.X-CB-Event = regsub(req.url, "^/(?:api/events|webcast)/([0-9]+)/.*$", "\1");
    std.collect(req.http.Cookie, "; ");
    set req.http.X-CB-Cookie = "";
    if (req.http.Cookie ~ "(?i)cb(_|%5f)wc") {
        if (regsuball(req.http.Cookie,
                "(^|; )cb_wc_[1-9][0-9]{0,11}=[A-Za-z0-9_-]{1,64}\.[0-9a-f]{32}(?=;|$)", "")
                ~ "(?i)cb(_|%5f)wc") {
            return (synth(403, "Malformed webcast cookie: register on the webcast page again"));
        }
        if (req.http.Cookie ~ "(^|; )cb_wc_([0-9]+)=.*; cb_wc_\2=") {
            return (synth(403, "Webcast cookie sent twice: register on the webcast page again"));
        }
        cookie.parse(req.http.Cookie);
        set req.http.X-CB-Cookie = cookie.get("cb_wc_" + req.http.X-CB-Event);
    }
}

sub vcl_hash {
    hash_data(req.url);
    if (req.url ~ "^/webcast/[0-9]+/access$") {
        hash_data(req.http.X-CB-Cookie);
    } elsif (req.url ~ "^/api/events/") {
        hash_data(req.http.X-CB-Access);
    }
    return (lookup);
}

sub vcl_backend_fetch {
    if (bereq.http.X-CB-Event) {
        # A gated request: the origin gets the gate cookie as read here, and
        # no Cookie to read it differently.
        set bereq.http.X-CB-Gate-Cookie = bereq.http.X-CB-Cookie;
        unset bereq.http.Cookie;
    } else {
        unset bereq.http.X-CB-Gate-Cookie;
    }
    unset bereq.http.X-CB-Access;
    unset bereq.http.X-CB-Url;
    unset bereq.http.X-CB-Event;
    unset bereq.http.X-CB-Cookie;
}

sub vcl_backend_response {
    set beresp.grace = 0s;
    set beresp.keep = 0s;
    if (bereq.url ~ "^/webcast/[0-9]+/access$") {
        # Kept only under the key it was decided for: an answer that names
        # another value (or none) is an error, never cached.
        if (!beresp.http.X-CB-Gate-Decided
                || beresp.http.X-CB-Gate-Decided != bereq.http.X-CB-Gate-Cookie) {
            return (error(503, "Access decided on another cookie"));
        }
        unset beresp.http.X-CB-Gate-Decided;
    }
    if (beresp.http.Set-Cookie) {
        # Never share an answer that hands someone a cookie.
        set beresp.uncacheable = true;
        set beresp.ttl = 0s;
        return (deliver);
    }
    if (beresp.http.Surrogate-Control ~ "max-age=[0-9.]+") {
        set beresp.ttl = std.duration(
            regsub(beresp.http.Surrogate-Control, "^.*max-age=([0-9.]+).*$", "\1") + "s", 0s);
        unset beresp.http.Surrogate-Control;
        if (beresp.ttl <= 0s) {
            set beresp.uncacheable = true;
        }
        return (deliver);
    }
    if (bereq.url ~ "^/static/" && beresp.status == 200) {
        set beresp.ttl = 60s;
        return (deliver);
    }
    # Anything the origin did not mark for this tier (errors included) is not
    # kept: a 4xx for a bad request is never served to the next one as good.
    set beresp.uncacheable = true;
    set beresp.ttl = 0s;
    return (deliver);
}

sub vcl_deliver {
    if (req.http.X-CB-Url && !req.http.X-CB-Access) {
        # The access answer is in: go on with the listener's own request.
        set req.http.X-CB-Access = resp.status;
        set req.url = req.http.X-CB-Url;
        return (restart);
    }
    unset resp.http.Surrogate-Control;
    unset resp.http.Via;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "hit";
    } else {
        set resp.http.X-Cache = "miss";
    }
}

sub vcl_synth {
    set resp.http.Content-Type = "text/plain; charset=utf-8";
    set resp.http.Cache-Control = "no-store";
    set resp.body = resp.reason + {"
"};
    return (deliver);
}
