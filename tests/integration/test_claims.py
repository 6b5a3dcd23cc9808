"""Uniqueness claims (sha256, slug) on the table of template.yaml."""

from __future__ import annotations

from imgdrop.store.db import Repository, bind


def test_a_claim_is_won_only_by_the_call_that_wrote_it(aws, monkeypatch):
    bind(aws.table_name)
    repo = Repository()
    assert repo.claim("acme", "SHA", "abc", "first", "2026-11-22T00:00:00Z") == "first"

    # Given the owner's read comes back empty once (the claim released and re-taken meanwhile)
    real_owner = Repository.claim_owner
    reads = []

    def flaky_owner(self, tenant, kind, value):
        reads.append(value)
        return None if len(reads) == 1 else real_owner(self, tenant, kind, value)

    monkeypatch.setattr(Repository, "claim_owner", flaky_owner)
    # When another image claims the same value, it is told who owns it, never that it won
    assert repo.claim("acme", "SHA", "abc", "second", "2026-11-22T00:00:01Z") == "first"
    assert len(reads) == 2
    monkeypatch.undo()
    assert repo.claim_owner("acme", "SHA", "abc") == "first"


def test_concurrent_claims_of_one_value_have_exactly_one_winner(aws):
    """DynamoDB applies a conditional put atomically; the local moto is made to as well."""
    from concurrent.futures import ThreadPoolExecutor

    bind(aws.table_name)
    repo = Repository()
    for value in ("v1", "v2", "v3", "v4", "v5"):
        contenders = [f"image-{n}" for n in range(16)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            owners = list(pool.map(lambda image_id: repo.claim("acme", "SHA", value, image_id, "now"), contenders))
        assert len(set(owners)) == 1, owners
        assert owners[0] in contenders
