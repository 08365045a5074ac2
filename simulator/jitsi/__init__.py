"""The Jitsi wire: lib-jitsi-meet's protocol as the published SDK speaks it, read and written.

Jingle (:mod:`.jingle`), MUC presence (:mod:`.presence`) and the bridge channel's messages
(:mod:`.colibri`): the formats alone, with no side of the conversation. The backend's door
(:mod:`simulator.server.jitsi`: the focus, the bridge) is written on them, and a client's door
for virtual participants is to be, so that no stanza is written twice.
"""
