"""Video conferencing media server: a forwarding SFU on aiortc.

* :mod:`.forwarding` - the passthrough (encoded frames in, encoded frames out, keyframe requests upstream); the only
  module that touches aiortc internals.
* :mod:`.room` - participants, publications, subscriber slots, mutes, active speaker.
* :mod:`.signalling` - offer/answer and trickle ICE per peer connection, independent of the transport.
* :mod:`.client` - an aiortc participant speaking the protocol, for tests and the benchmark.
* :mod:`.loopback` - tests only: ICE on 127.0.0.1.
"""

from .forwarding import EncodedFrame, ForwardedTrack, PassthroughBuffer, TrackForwarder, install_passthrough
from .room import ActiveSpeakerDetector, Participant, SfuRoom
from .signalling import SignallingError, SignallingSession

__all__ = [
    "ActiveSpeakerDetector",
    "EncodedFrame",
    "ForwardedTrack",
    "Participant",
    "PassthroughBuffer",
    "SfuRoom",
    "SignallingError",
    "SignallingSession",
    "TrackForwarder",
    "install_passthrough",
]
