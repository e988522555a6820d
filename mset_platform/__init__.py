"""The runtime every MSET service shares, written once.

Databases (engine, UTC datetimes, sessions), migrations, the HTTP edge, paging, settings,
logging, metrics, the Temporal client and the identity client. The contract
(``mset_contract``) says *what* crosses a boundary; this package is *how* a service process
runs. Nothing here knows about referrals, meetings or notifications.
"""
