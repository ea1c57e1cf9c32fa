from rest_framework import serializers


class FaultSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["probability", "milliseconds", "flag", "choices"])
    value = serializers.JSONField()
    default = serializers.JSONField()
    description = serializers.CharField()
    choices = serializers.ListField(child=serializers.CharField(), required=False)


class FaultsSerializer(serializers.Serializer):
    faults = FaultSpecSerializer(many=True)
