"""Video conferencing media server: a forwarding SFU on aiortc.

* :mod:`.forwarding` - RTP packets in, the same packets out under each subscriber's header (keyframe requests and
  NACKs answered); with :mod:`.frames`, the only modules that touch aiortc internals.
* :mod:`.room` - participants, publications, subscriber slots, mutes, active speaker.
* :mod:`.adaptation` - each subscriber's link estimate (REMB, receiver reports), Last-N video and audio selection,
  the REMB cap on publishers; :mod:`.links` runs it per room, :mod:`.pacing` sends audio ahead of paced video.
  ``SfuRoom.link_stats()`` and ``MediaRegistry.stats()`` are what the chair's panel and metrics read.
* :mod:`.signalling` - offer/answer and trickle ICE per peer connection, independent of the transport.
* :mod:`.frames` - whole encoded frames out of an aiortc receiver without a decoder, for test and benchmark clients.
* :mod:`.client` - an aiortc participant speaking the protocol, for tests and the benchmark.
* :mod:`.loopback` - tests only: ICE on 127.0.0.1.
"""

from .adaptation import LinkEstimate
from .forwarding import ForwardedTrack, TrackForwarder
from .frames import EncodedFrame, PassthroughBuffer, install_passthrough
from .room import ActiveSpeakerDetector, Participant, SfuRoom
from .signalling import SignallingError, SignallingSession

__all__ = [
    "ActiveSpeakerDetector",
    "EncodedFrame",
    "ForwardedTrack",
    "LinkEstimate",
    "Participant",
    "PassthroughBuffer",
    "SfuRoom",
    "SignallingError",
    "SignallingSession",
    "TrackForwarder",
    "install_passthrough",
]
