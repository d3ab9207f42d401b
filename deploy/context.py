"""What every step needs: settings, clients, names, the report, and the values earlier steps
found (the outputs), plus a clock that tests can speed up."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from deploy.aws import Clients
from deploy.config import Settings
from deploy.names import Names
from deploy.outputs import Outputs
from deploy.report import Report


@dataclass
class Context:
    settings: Settings
    clients: Clients
    report: Report
    names: Names
    outputs: Outputs
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    poll_seconds: float = 5.0

    @classmethod
    def open(cls, settings: Settings, clients: Clients, report: Report) -> Context:
        """Finds the account from the credentials (names depend on it)."""
        account = str(clients.sts.get_caller_identity()["Account"])
        names = Names(settings.prefix, settings.region, account, settings.cognito_domain_prefix)
        return cls(settings, clients, report, names, Outputs(settings.region, account))

    def wait(self, what: str, check: Callable[[], tuple[bool, str]]) -> str:
        """Poll `check` (done?, state) until done, printing each new state once; gives up
        after the configured wait."""
        start = self.clock()
        last = ""
        while True:
            done, state = check()
            if done:
                return state
            elapsed = self.clock() - start
            if state != last:
                self.report.waiting(what, state, elapsed)
                last = state
            if elapsed > self.settings.wait_seconds:
                raise DeployError(f"{what}: still {state} after {elapsed:.0f} s")
            self.sleep(self.poll_seconds)


class DeployError(Exception):
    """A step cannot go on; the message says what to do."""
