"""Native message formats of the intake channels (one module per upstream system).

Each upstream system publishes what it already produces to its own topic
`fengqiao.intake.<channel>`; these models describe those messages as the adapters accept them.
They are deliberately tolerant of *additional* fields (upstream systems grow fields over time,
and an unknown field must not stop an integration) but strict about the fields they use.
Personal data (names, phone numbers, ID numbers, free-text descriptions) is accepted here only so
that it can be recognised and kept out: the adapters never copy it into canonical events.
"""

from schemas.intake.channels import CHANNELS, ChannelMessage

__all__ = ["CHANNELS", "ChannelMessage"]
