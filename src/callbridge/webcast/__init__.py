"""The webcast: the conference mix as Low-Latency HLS, and the replay as on-demand HLS.

* ``live.LiveWebcast``       push the mix every tick; parts, segments and the playlist on disk;
* ``blocking.PlaylistWaiter`` hold blocking playlist reloads (``_HLS_msn``/``_HLS_part``);
* ``vod.package_replay``     an assembled recording as a seekable VOD playlist;
* ``playlist``               the media playlist model, its m3u8 text, and its parser.
"""
