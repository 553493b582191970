"""The cluster control: the decisions both drivers share (scheduling, stealing and
session moves, KV retention, admission, timers), driven by events and carried out
through a driver's `Transport`."""
from agentrt.runtime.core.control.admission import AdmissionGate
from agentrt.runtime.core.control.control import ClusterControl, ControlSettings
from agentrt.runtime.core.control.retention import RetentionControl
from agentrt.runtime.core.control.transport import Transport

__all__ = ["AdmissionGate", "ClusterControl", "ControlSettings", "RetentionControl",
           "Transport"]
