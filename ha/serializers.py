"""Input and output of ``/api/ha/`` and ``/api/smr/``."""

from __future__ import annotations

from rest_framework import serializers

from ha.modes import MAX_SYNC_NODES, MODES, SYNCHRONOUS_COMMITS
from ha.smr import CONSISTENCIES, OPERATIONS


class ModeInput(serializers.Serializer):
    mode = serializers.ChoiceField(choices=MODES)
    sync_node_count = serializers.IntegerField(min_value=1, max_value=MAX_SYNC_NODES, default=1)
    synchronous_commit = serializers.ChoiceField(
        choices=SYNCHRONOUS_COMMITS,
        required=False,
        help_text="What a commit waits for on the synchronous standbys; by default the "
        "mode's own (remote_apply for sync_apply, on otherwise).",
    )


class SwitchoverInput(serializers.Serializer):
    candidate = serializers.CharField(required=False, max_length=100)


class MemberOutput(serializers.Serializer):
    name = serializers.CharField()
    role = serializers.CharField()
    state = serializers.CharField()
    timeline = serializers.IntegerField(allow_null=True)
    lag_bytes = serializers.IntegerField(allow_null=True)
    synchronous = serializers.BooleanField()
    host = serializers.CharField()
    port = serializers.IntegerField()
    receive_lsn = serializers.CharField(allow_null=True)
    replay_lsn = serializers.CharField(allow_null=True)


class HistoryOutput(serializers.Serializer):
    timeline = serializers.IntegerField()
    switch_lsn = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    at = serializers.CharField(allow_null=True)
    new_leader = serializers.CharField(allow_null=True)


class EtcdMemberOutput(serializers.Serializer):
    url = serializers.CharField(required=False)
    ok = serializers.BooleanField()
    member_id = serializers.CharField(required=False)
    leader_id = serializers.CharField(required=False)
    is_leader = serializers.BooleanField(required=False)
    raft_term = serializers.IntegerField(required=False)
    raft_index = serializers.IntegerField(required=False)
    raft_applied_index = serializers.IntegerField(required=False)
    revision = serializers.IntegerField(required=False)
    db_size = serializers.IntegerField(required=False, help_text="bytes")
    # DRF's serializer metaclass takes declared fields off the class: this field does not
    # replace Serializer.errors, whatever the stubs say.
    errors = serializers.ListField(  # type: ignore[assignment]
        child=serializers.CharField(), required=False
    )
    error = serializers.CharField(required=False)


class StatusOutput(serializers.Serializer):
    message = serializers.CharField(required=False, help_text="switchover: Patroni's answer")
    mode = serializers.ChoiceField(choices=MODES)
    sync_node_count = serializers.IntegerField()
    synchronous_commit = serializers.CharField()
    leader = serializers.CharField(allow_null=True)
    timeline = serializers.IntegerField(allow_null=True)
    members = MemberOutput(many=True)
    history = HistoryOutput(many=True)
    ttl = serializers.IntegerField(allow_null=True)
    loop_wait = serializers.IntegerField(allow_null=True)
    etcd = EtcdMemberOutput(many=True, required=False)


class KillOutput(serializers.Serializer):
    leader = serializers.CharField(allow_null=True)
    port = serializers.IntegerField()
    postmaster_pid = serializers.IntegerField()
    killed_at = serializers.FloatField(help_text="Unix time of the kill.")


class SmrOperationInput(serializers.Serializer):
    """Documents the body; ``ha.smr.StateMachine.apply`` validates it (values are any JSON)."""

    op = serializers.ChoiceField(choices=OPERATIONS)
    key = serializers.CharField(max_length=200)
    value = serializers.JSONField(required=False, help_text="set, cas: the new value")
    delta = serializers.IntegerField(required=False, help_text="increment: default 1")
    expected = serializers.JSONField(
        required=False, help_text="cas: the value the key must hold (null: absent)"
    )


class SmrResultOutput(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.JSONField(allow_null=True)
    exists = serializers.BooleanField()
    revision = serializers.IntegerField(help_text="etcd's store revision after the operation")
    mod_revision = serializers.IntegerField()
    version = serializers.IntegerField()
    raft_term = serializers.IntegerField()
    raft_index = serializers.IntegerField(
        allow_null=True,
        help_text="The answering member's applied Raft index right after the operation.",
    )
    member = serializers.CharField()
    attempts = serializers.IntegerField()


class SmrReadQuery(serializers.Serializer):
    consistency = serializers.ChoiceField(choices=CONSISTENCIES, default="linearizable")


class SmrKeyspaceOutput(serializers.Serializer):
    revision = serializers.IntegerField()
    raft_term = serializers.IntegerField()
    keys = serializers.ListField(child=serializers.DictField())
