"""The fleet wing: s3w's own distributed work over the workers (sharded sync, backfills).

``authority`` signs and checks fleet messages; ``distributed`` coordinates a sync cut into
shards (``shard_layout``) that ``shard_sync`` runs, summed by ``sync_sums``, recorded by
``runs``; ``backfill`` sends the contract's preview tasks in bounded batches; ``broker``
is the sending side of the broker for all of them.
"""
