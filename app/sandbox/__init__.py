"""The agent's boundary: the jail around each CLI process, the egress proxy and the model relay.

The engine asks `Sandbox` for a launch script per session; nothing else knows how the jail is
built. Agents reach the outside world only through their session's door (a socket that the app
serves), which proxies allowed hosts and relays model requests with the real credential added.
"""
