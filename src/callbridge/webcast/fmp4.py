"""Fragmented MP4 (CMAF) boxes for one AAC audio track, written by hand.

FFmpeg's mp4 muxer decides by itself when a fragment ends and buffers what
it writes; LL-HLS needs a fragment to end exactly on a part boundary and be
on disk at once. The boxes an audio-only CMAF track needs are few, so they
are built here from ISO/IEC 14496-12 (ISOBMFF) and 14496-14 (MP4, ``esds``):

* the init segment: ``ftyp`` + ``moov`` (one ``trak`` with an ``mp4a``
  sample entry carrying the AudioSpecificConfig, and ``mvex``/``trex`` to say
  that samples come in fragments);
* a media fragment: ``moof`` (``mfhd`` sequence number, ``traf`` with
  ``tfhd`` default-base-is-moof, ``tfdt`` base decode time, ``trun`` sample
  durations and sizes) followed by ``mdat``.

Pure functions over bytes: no files, no clock.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

TRACK_ID = 1
# ISO/IEC 14496-1 descriptor tags used inside ``esds``.
_ES_DESCR = 0x03
_DECODER_CONFIG = 0x04
_DECODER_SPECIFIC = 0x05
_SL_CONFIG = 0x06
_OBJECT_TYPE_MPEG4_AUDIO = 0x40
_STREAM_TYPE_AUDIO = 0x05
# Unity transformation matrix of mvhd and tkhd (16.16 and 2.30 fixed point).
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
# tfhd flag: data offsets are relative to the start of the moof.
_DEFAULT_BASE_IS_MOOF = 0x020000
# trun flags: data-offset-present, sample-duration-present, sample-size-present.
_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200


def box(kind: bytes, *payload: bytes) -> bytes:
    """One ISOBMFF box: 32-bit size, four-character type, payload."""
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    """A box whose payload starts with an 8-bit version and 24-bit flags."""
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _descriptor(tag: int, body: bytes) -> bytes:
    if len(body) >= 1 << 21:
        raise ValueError("descriptor too long")
    # The length is a base-128 number, high bit set on all but the last byte;
    # a fixed four-byte form is what most muxers write and every parser reads.
    size = len(body)
    encoded = bytes(
        [0x80 | (size >> 21) & 0x7F, 0x80 | (size >> 14) & 0x7F, 0x80 | (size >> 7) & 0x7F]
    ) + bytes([size & 0x7F])
    return bytes([tag]) + encoded + body


def _esds(audio_specific_config: bytes, bit_rate: int) -> bytes:
    decoder_config = _descriptor(
        _DECODER_CONFIG,
        struct.pack(
            ">BB3sII",
            _OBJECT_TYPE_MPEG4_AUDIO,
            (_STREAM_TYPE_AUDIO << 2) | 1,  # upstream 0, reserved 1
            (0).to_bytes(3, "big"),  # bufferSizeDB: unknown
            bit_rate,  # maxBitrate
            bit_rate,  # avgBitrate
        )
        + _descriptor(_DECODER_SPECIFIC, audio_specific_config),
    )
    es = _descriptor(
        _ES_DESCR,
        struct.pack(">HB", 0, 0) + decoder_config + _descriptor(_SL_CONFIG, b"\x02"),
    )
    return full_box(b"esds", 0, 0, es)


def init_segment(
    *, sample_rate: int, channels: int, audio_specific_config: bytes, bit_rate: int = 0
) -> bytes:
    """The CMAF header (``ftyp`` + ``moov``) for one AAC track at ``sample_rate``.

    The track's timescale is the sample rate, so a sample's duration is its
    sample count (1024 for AAC-LC). Referenced from the playlist by
    ``EXT-X-MAP``; every fragment written by ``media_fragment`` decodes with it.
    """
    if not 0 < sample_rate < 1 << 16:
        raise ValueError(f"sample rate {sample_rate} does not fit an mp4a sample entry")
    ftyp = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6", b"cmfc", b"mp41")
    mvhd = full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, 1000, 0),  # created, modified, timescale, duration
        struct.pack(">IH", 0x00010000, 0x0100),  # rate 1.0, volume 1.0
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", TRACK_ID + 1),  # next_track_ID
    )
    tkhd = full_box(
        b"tkhd",
        0,
        0x000003,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0x0100, 0),  # layer, alternate group, volume, reserved
        _MATRIX,
        struct.pack(">II", 0, 0),  # width, height
    )
    mdhd = full_box(
        b"mdhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, sample_rate, 0),
        struct.pack(">HH", 0x55C4, 0),  # language "und", pre_defined
    )
    hdlr = full_box(b"hdlr", 0, 0, bytes(4), b"soun", bytes(12), b"SoundHandler\x00")
    mp4a = box(
        b"mp4a",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(8),
        struct.pack(">HHHH", channels, 16, 0, 0),
        struct.pack(">I", sample_rate << 16),
        _esds(audio_specific_config, bit_rate),
    )
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), mp4a),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = box(
        b"minf",
        full_box(b"smhd", 0, 0, struct.pack(">hH", 0, 0)),
        box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1))),
        stbl,
    )
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 1024, 0, 0))
    return ftyp + box(b"moov", mvhd, trak, box(b"mvex", trex))


def media_fragment(
    sequence_number: int,
    base_decode_time: int,
    samples: Sequence[bytes],
    durations: Iterable[int],
) -> bytes:
    """One ``moof`` + ``mdat`` holding ``samples`` (AAC access units, no ADTS).

    ``base_decode_time`` is in the track's timescale (samples) and must equal
    the sum of the durations of every sample before this fragment;
    ``sequence_number`` must grow by one from fragment to fragment.
    """
    durations = list(durations)
    if len(durations) != len(samples) or not samples:
        raise ValueError("a fragment needs one duration per sample, and at least one sample")
    entries = b"".join(
        struct.pack(">II", d, len(s)) for d, s in zip(durations, samples, strict=True)
    )

    def moof(data_offset: int) -> bytes:
        trun = full_box(
            b"trun", 0, _TRUN_FLAGS, struct.pack(">Ii", len(samples), data_offset), entries
        )
        traf = box(
            b"traf",
            full_box(b"tfhd", 0, _DEFAULT_BASE_IS_MOOF, struct.pack(">I", TRACK_ID)),
            full_box(b"tfdt", 1, 0, struct.pack(">Q", base_decode_time)),
            trun,
        )
        return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence_number)), traf)

    # The data offset counts from the moof's first byte to the first sample.
    size = len(moof(0))
    return moof(size + 8) + box(b"mdat", *samples)
