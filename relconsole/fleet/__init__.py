"""The fleet: every release in one table (`relconsole fleet`, issue 12).

`rows` holds the data the screen shows (frozen rows, pure sort and filter, the feed that
coalesces changes); `argo` watches the Rollouts of one or several kubeconfig contexts;
`folder` reads the releases of a folder of relconsole configs from their journals and
leases. Nothing here knows Textual: the screen is `relconsole.tui.fleet`.
"""
