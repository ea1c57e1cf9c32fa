"""The link proxy (devstack/linkproxy.py) as a component: one process, several named routes."""

from pathlib import Path
from typing import Any

from devstack import linkproxy
from devstack.components.base import PythonDaemon
from devstack.workspace import Workspace


class LinkProxy(PythonDaemon):
    """Routes ``name -> (listen_port, target_port)``; `port` is the control port.

    ``control()`` gives the client that slows and cuts routes and reads what is in force.
    ``refuse_after_ms``: how long a new connection to a cut route is held before its reset.
    """

    readiness = "answer on its control port"
    refuse_after_ms = 0

    def __init__(
        self,
        workspace: Workspace,
        *,
        name: str,
        port: int,
        routes: dict[str, tuple[int, int]],
        refuse_after_ms: int | None = None,
    ) -> None:
        super().__init__(workspace, name=name, port=port)
        self.routes = dict(routes)
        if refuse_after_ms is not None:
            self.refuse_after_ms = refuse_after_ms

    def command(self) -> list[str]:
        argv = [str(self.binary), str(Path(linkproxy.__file__)), "--control-port", str(self.port)]
        for route, (listen, target) in self.routes.items():
            argv += ["--route", f"{route}={listen}:{target}"]
        if self.refuse_after_ms:
            argv += ["--refuse-after-ms", str(self.refuse_after_ms)]
        return argv

    def control(self) -> linkproxy.LinkControl:
        return linkproxy.LinkControl(self.port)

    def ready(self) -> bool:
        try:
            self.control().status()
        except (OSError, ValueError):
            return False
        return True

    def status_details(self, pid: int | None) -> dict[str, Any]:
        if pid is None:
            return {"routes": None}
        try:
            return {"routes": self.control().status()}
        except (OSError, ValueError) as error:
            return {"routes": None, "error": str(error)}

    def describe(self) -> str:
        return f"{super().describe()} (control), routes " + ", ".join(
            f"{name} :{listen}->:{target}" for name, (listen, target) in self.routes.items()
        )
