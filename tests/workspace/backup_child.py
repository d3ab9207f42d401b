"""A machine backing up its project in a process of its own, printing how many files have gone
as the count moves: the test kills it (SIGKILL, like a microVM that stops) part way.

    python -m tests.workspace.backup_child <endpoint> <bucket> <machine folder>
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.s3 import S3Server
from tests.workspace.machines import Machine


async def main(endpoint: str, bucket: str, root: Path) -> None:
    machine = Machine(root, S3Server(endpoint), bucket)

    async def tell() -> None:
        async for progress in machine.sync.updates(machine.scope.user_id):
            for each in progress:
                print(each.files_done, flush=True)

    telling = asyncio.create_task(tell())
    await machine.sync.backup_now(machine.scope)
    telling.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
