"""The Kafka room: the engine and adapter loops, their one transaction, the changelog, topics,
group membership — everything that talks to the broker.

Importing it puts kafka-python's stuck-rejoin workaround in place (`rejoin.apply()`, once per
process), so every consumer built by this room, or by anything that uses it, is covered.
"""

from consumers.kafka import rejoin

rejoin.apply()
