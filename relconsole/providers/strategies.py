"""What each built-in traffic provider does for each `release.strategy`.

One table, read by `check` (a strategy a provider cannot do is refused, naming the
providers that can), by the plan and by the README's strategy table (a test keeps them
equal). A plugin says what it can do with a `strategies` mapping on its factory; one
that says nothing does canary only.
"""

from __future__ import annotations

from collections.abc import Mapping

STRATEGIES: dict[str, dict[str, str]] = {
    "haproxy": {
        "canary": "the canary's share of one backend's server weights (`set weight`)",
        "blue-green": "green checked healthy through the preview route with no user "
                      "traffic, then all traffic switched and blue drained (`state drain`); "
                      "rollback switches back with drain",
        "ab": "a cohort by header, cookie or sticky hash of a user id, through runtime-API "
              "maps (`add map`) a `use-server`/`use_backend` rule reads, then weights",
        "rolling": "the servers of one backend in batches: drained, in maintenance, the "
                   "`deploy` command per server, health check, back in rotation",
    },
    "command": {
        "canary": "the `set_weight` hook, read back with `status`",
        "rolling": "batches of `servers`: the `drain`, `deploy` and `ready` hooks per "
                   "server, the `health` hook before it returns",
        "shadow": "the `set_mirror` hook configures the proxy's mirroring; `status` "
                  "reads the mirror share back",
    },
    "argo-rollouts": {
        "canary": "the Rollout's own canary steps (promote, abort, pause)",
        "blue-green": "the Rollout's blueGreen strategy: preview, then promote switches "
                      "the active service",
        "shadow": "the Rollout's setMirrorRoute steps (a mirror share before weights)",
    },
    "sim": {
        "canary": "the built-in simulator's weights",
    },
}


def supported(provider_type: str, plugin_strategies: Mapping[str, str] | None = None
              ) -> dict[str, str]:
    """What `provider_type` does per strategy; a plugin's own table where it has one."""
    if provider_type in STRATEGIES:
        return STRATEGIES[provider_type]
    if plugin_strategies:
        return dict(plugin_strategies)
    return {"canary": "the plugin's set_weight"}


def providers_for(strategy: str) -> list[str]:
    """The built-in traffic providers that can do `strategy`."""
    return [name for name, table in STRATEGIES.items() if strategy in table]
