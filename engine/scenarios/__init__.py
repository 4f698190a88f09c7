"""Scenario tests for workflow authors (`fengqiao test`): the pure part.

A scenario file (`workflows/tests/*.yaml`) tells stories of one workflow as steps on a virtual
clock, each with what the author expects to see afterwards. `spec` reads and checks the files
(every problem as `PATH:LINE:COL: error: MESSAGE`, like `validate`), `offsets` reads relative
times such as "+3 working days" on the workflow's own calendar, `messages` sends a step's
native intake message through its channel file (`engine.intake`, as the adapters do), and `run`
plays each scenario through `engine.replay.Replay`, the path `simulate` and `run` share, so a
passing scenario says something about production and not about a second, test-only engine.
"""
