"""Building blocks of native intake messages (the channels themselves are data).

Each upstream system publishes what it already produces to its own topic
`fengqiao.intake.<channel>`; its channel file (`workflows/channels/<channel>.yaml`, see
`schemas.channel`) declares those messages, and `engine.channels` builds their parsers from these
types. They are deliberately tolerant of *additional* fields (upstream systems grow fields over
time, and an unknown field must not stop an integration) but strict about the fields they use.
Personal data (names, phone numbers, ID numbers, free-text descriptions) is accepted only so
that it can be recognised and kept out: the adapters never copy it into canonical events.
"""
