"""Move every child's identity to the identity keyring's current key (key rotation, ADR 0028):
``python -m services.referral.reseal``, with the referral service's settings, after the new
key was made current. Safe to repeat and to interrupt: each batch is one transaction."""

from __future__ import annotations

from services.referral.child_identity import IdentityStore
from services.referral.migrate import MIGRATIONS
from services.referral.settings import ReferralSettings
from services.referral.store import Store


def reseal(settings: ReferralSettings, batch: int = 1000) -> int:
    engine = MIGRATIONS.open(settings.database_url, settings.auto_migrate)
    try:
        store = Store(engine)
        identities = IdentityStore(settings.identity_cipher(), settings.identity_index())
        moved = 0
        while True:
            with store.session() as s:
                n = identities.reseal_all(s, batch)
            moved += n
            if n == 0:
                return moved
    finally:
        engine.dispose()


def main() -> None:
    settings = ReferralSettings()
    moved = reseal(settings)
    print(f"{moved} identities resealed under {settings.identity_cipher().current}")


if __name__ == "__main__":
    main()
