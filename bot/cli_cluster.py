"""The research commands' cluster options: where tasks run (`--scheduler`, `--workers`) and where a
search is kept (`--storage`)."""
from __future__ import annotations

from core.service.registry import UsageError


def add_cluster_args(p, search: bool = False) -> None:
    p.add_argument("--scheduler", default="local",
                   help="where tasks run: local (default: a Dask LocalCluster, one worker per core), serial (in "
                        "this process), or tcp://host:8786 (a running `dask scheduler`; README: Research on a cluster)")
    p.add_argument("--workers", type=int, help="--scheduler local: worker processes (default: one per core)")
    if search:
        p.add_argument("--storage", help="database keeping the --trials search, so that it resumes (default: "
                                         "DATABASE_URL's; SQLite: <db>.optuna.db beside it, PostgreSQL: schema optuna)")


def cluster_runner(args):
    """The runner the options name, to use in a `with`; a scheduler that cannot be reached raises
    ClusterError, one line naming its address (exit 2)."""
    from core.research.cluster import check_scheduler, connect

    scheduler = check_scheduler(args.scheduler)
    if args.workers is not None and scheduler != "local":
        raise UsageError("--workers is for --scheduler local (a cluster has the workers it was given)")
    return connect(scheduler, args.workers)


def search_storage(args, settings):
    """The search's storage when there is a search, else None (memory)."""
    if not getattr(args, "trials", 0):
        return None
    from core.redaction import database_password, register
    from core.research.search_storage import SearchStorage

    url = args.storage or settings.database_url
    register([database_password(url)])
    return SearchStorage(url)
