"""`python -m deploy`: Agent Web on AWS (an AgentCore Runtime container and a static site).

`up` creates or brings up to date every resource and writes an outputs file, `status` shows
them, `down` removes what `up` made, `probe` deploys a tiny container that reports what
AgentCore forwards. Each AWS service has its own module; `plan` puts them in order.
"""
