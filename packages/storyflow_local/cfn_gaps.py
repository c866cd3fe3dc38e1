"""What moto's CloudFormation skips or gets wrong, covered while the stack is created.

* Resource types moto does not know get a local model: `AWS::SNS::Subscription` (a real
  subscription), `AWS::CloudWatch::Alarm` (a real alarm, evaluated by the alarms adapter),
  `AWS::Lambda::Alias`, and for everything else (`SQS::QueuePolicy`, `ApiGateway::Stage`, bucket and
  topic policies, capacity providers, scaling targets, ...) a recorded resource whose `Ref`/`GetAtt`
  resolve, so nothing that references it breaks.
* `AWS::StepFunctions::StateMachine` is created in the *executing* backend, its definition read from
  `DefinitionString`/`Definition`/`DefinitionS3Location` with `DefinitionSubstitutions` applied.
* `AWS::S3::Bucket` gets its `VersioningConfiguration`, `NotificationConfiguration`
  (Lambda/SQS/SNS/EventBridge) and `LifecycleConfiguration`, which moto's CloudFormation drops.

Properties arrive with intrinsics already resolved by moto (Ref/GetAtt/Sub against physical ids).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from storyflow_local.patching import Patches

log = logging.getLogger("storyflow_local.deploy")


class LocalResource:
    """Duck-types moto's CloudFormationModel without subclassing it (so moto's registry stays clean)."""

    resource_type = "AWS::Local::Resource"

    def __init__(self, name: str, region: str, account_id: str, properties: dict[str, Any]) -> None:
        self.name = name
        self.region = region
        self.account_id = account_id
        self.properties = properties

    # --- moto's CloudFormationModel protocol
    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.resource_type

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    @property
    def physical_resource_id(self) -> str:
        return self.name

    def is_created(self) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "Arn":
            return self.arn
        return self.properties.get(attribute_name, self.name)

    @property
    def arn(self) -> str:
        service, kind = _service_and_kind(self.resource_type)
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{kind}/{self.name}"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LocalResource:
        props = cloudformation_json.get("Properties") or {}
        resource = cls(resource_name, region_name, account_id, props)
        resource.create()
        return resource

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> LocalResource:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        return None

    def delete(self, account_id: str, region_name: str) -> None:
        return None

    def create(self) -> None:
        log.debug("recorded %s %s (not emulated)", self.resource_type, self.name)


def _service_and_kind(resource_type: str) -> tuple[str, str]:
    parts = resource_type.split("::")
    if len(parts) == 3:
        return parts[1].lower(), parts[2].lower()
    return "local", resource_type.lower()


class SnsSubscription(LocalResource):
    resource_type = "AWS::SNS::Subscription"
    _ATTRIBUTES = (
        "RawMessageDelivery",
        "FilterPolicy",
        "FilterPolicyScope",
        "RedrivePolicy",
        "DeliveryPolicy",
    )

    def create(self) -> None:
        from moto.sns.models import sns_backends

        backend = sns_backends[self.account_id][self.region]
        props = self.properties
        subscription = backend.subscribe(props["TopicArn"], props["Endpoint"], props["Protocol"])
        self.name = subscription.arn
        for attribute in self._ATTRIBUTES:
            if attribute in props:
                value = props[attribute]
                if isinstance(value, (dict, list)):
                    value = json.dumps(value)
                elif isinstance(value, bool):
                    value = str(value).lower()
                backend.set_subscription_attributes(subscription.arn, attribute, str(value))

    @property
    def arn(self) -> str:
        return self.name

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.sns.models import sns_backends

        sns_backends[account_id][region_name].unsubscribe(self.name)


class CloudWatchAlarm(LocalResource):
    resource_type = "AWS::CloudWatch::Alarm"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    def create(self) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        props = self.properties
        self.name = props.get("AlarmName", self.name)
        alarm = cloudwatch_backends[self.account_id][self.region].put_metric_alarm(
            name=self.name,
            namespace=props.get("Namespace", ""),
            metric_name=props.get("MetricName", ""),
            comparison_operator=props["ComparisonOperator"],
            evaluation_periods=int(props["EvaluationPeriods"]),
            period=int(props.get("Period", 60)),
            threshold=float(props.get("Threshold", 0)),
            statistic=props.get("Statistic", ""),
            description=props.get("AlarmDescription", ""),
            dimensions=props.get("Dimensions", []),
            alarm_actions=list(props.get("AlarmActions", [])),
            datapoints_to_alarm=int(props["DatapointsToAlarm"]) if "DatapointsToAlarm" in props else None,
            extended_statistic=props.get("ExtendedStatistic"),
            ok_actions=list(props.get("OKActions", [])),
            insufficient_data_actions=list(props.get("InsufficientDataActions", [])),
            unit=props.get("Unit"),
            actions_enabled=_bool(props.get("ActionsEnabled", True)),
            treat_missing_data=props.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=props.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=props.get("ThresholdMetricId"),
        )
        # AWS starts every alarm in INSUFFICIENT_DATA (moto: OK); keep metric-math queries for the evaluator.
        alarm.state_value = "INSUFFICIENT_DATA"
        alarm.local_metrics = props.get("Metrics") or []  # type: ignore[attr-defined]

    @property
    def arn(self) -> str:
        return f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{self.name}"

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        cloudwatch_backends[account_id][region_name].delete_alarms([self.name])


class LambdaAlias(LocalResource):
    resource_type = "AWS::Lambda::Alias"

    def create(self) -> None:
        from moto.awslambda.models import lambda_backends

        props = self.properties
        alias = lambda_backends[self.account_id][self.region].create_alias(
            name=props["Name"],
            function_name=props["FunctionName"],
            function_version=str(props["FunctionVersion"]),
            description=props.get("Description", ""),
            routing_config=props.get("RoutingConfig"),  # type: ignore[arg-type]
        )
        self.name = alias.arn

    @property
    def arn(self) -> str:
        return self.name


class ApiDeployment(LocalResource):
    """Recorded: moto refuses a deployment of an API it imported no methods into (SAM's swagger 2.0 Body);
    the API is served by the local HTTP shim from the template's routes instead."""

    resource_type = "AWS::ApiGateway::Deployment"


LOCAL_MODELS: dict[str, type[LocalResource]] = {
    model.resource_type: model for model in (SnsSubscription, CloudWatchAlarm, LambdaAlias, ApiDeployment)
}


# Types whose generated physical names AWS makes lowercase (moto only does it for buckets).
LOWERCASE_NAMES = {"AWS::ECR::Repository"}


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _recorded_model(resource_type: str) -> type[LocalResource]:
    return type(
        f"Recorded_{resource_type.replace('::', '_')}", (LocalResource,), {"resource_type": resource_type}
    )


# --- state machines --------------------------------------------------------------------------------


def state_machine_definition(props: dict[str, Any], account_id: str) -> str:
    """The ASL text of an AWS::StepFunctions::StateMachine with its DefinitionSubstitutions applied."""
    if "DefinitionString" in props:
        definition = props["DefinitionString"]
    elif "Definition" in props:
        definition = json.dumps(props["Definition"])
    elif "DefinitionS3Location" in props:
        from moto.s3.models import s3_backends

        location = props["DefinitionS3Location"]
        key = s3_backends[account_id]["aws"].get_object(location["Bucket"], location["Key"])
        if key is None:
            raise ValueError(f"state machine definition not found at {location}")
        definition = key.value.decode()
    else:
        raise ValueError("state machine has no Definition, DefinitionString or DefinitionS3Location")
    for name, value in (props.get("DefinitionSubstitutions") or {}).items():
        definition = definition.replace("${" + name + "}", _substitution(value))
    return str(definition)


def _substitution(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _create_state_machine(
    cls: Any,
    /,
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    from moto.stepfunctions.responses import get_backend

    props = cloudformation_json["Properties"]
    name = props.get("StateMachineName", resource_name)
    tags = [{"key": t["Key"], "value": t["Value"]} for t in props.get("Tags", [])]
    backend = get_backend(account_id, region_name)
    return backend.create_state_machine(
        name,
        state_machine_definition(props, account_id),
        props.get("RoleArn", ""),
        tags=tags,
        sm_type=props.get("StateMachineType", "STANDARD"),
    )


def _delete_state_machine(
    cls: Any, /, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
) -> None:
    from moto.stepfunctions.responses import get_backend

    backend = get_backend(account_id, region_name)
    for machine in list(backend.state_machines):
        if resource_name in (machine.name, machine.arn):
            backend.delete_state_machine(machine.arn)


def _update_state_machine(
    cls: Any,
    /,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> Any:
    from moto.stepfunctions.responses import get_backend

    props = cloudformation_json.get("Properties", {})
    backend = get_backend(account_id, region_name)
    return backend.update_state_machine(
        original_resource.arn,
        definition=state_machine_definition(props, account_id),
        role_arn=props.get("RoleArn") or None,
    )


# --- buckets ---------------------------------------------------------------------------------------


def bucket_lifecycle_rules(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    """`LifecycleConfiguration` (CloudFormation's shape) as the rules of PutBucketLifecycleConfiguration
    (the parsed XML moto's bucket takes): GetBucketLifecycleConfiguration then answers what AWS would."""
    rules = []
    for rule in cfn.get("Rules") or []:
        tags = [{"Key": t["Key"], "Value": t["Value"]} for t in rule.get("TagFilters") or []]
        prefix = rule.get("Prefix")
        if tags and (prefix or len(tags) > 1):
            lc_filter: dict[str, Any] = {"And": {"Prefix": prefix or "", "Tag": tags}}
        elif tags:
            lc_filter = {"Tag": tags[0]}
        else:
            lc_filter = {"Prefix": prefix or ""}
        api: dict[str, Any] = {
            "ID": rule.get("Id"),
            "Status": rule.get("Status", "Enabled"),
            "Filter": lc_filter,
        }
        if rule.get("ExpirationInDays") is not None:
            api["Expiration"] = {"Days": str(rule["ExpirationInDays"])}
        abort = rule.get("AbortIncompleteMultipartUpload")
        if abort:
            api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": str(abort["DaysAfterInitiation"])}
        noncurrent = rule.get("NoncurrentVersionExpiration")
        if noncurrent:
            api["NoncurrentVersionExpiration"] = {
                k: str(v) for k, v in noncurrent.items() if k in ("NoncurrentDays", "NewerNoncurrentVersions")
            }
        rules.append(api)
    return rules


def bucket_notification_config(cfn: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation NotificationConfiguration → the shape moto's bucket model takes."""

    def convert(items: list[dict[str, Any]], target_key: str, api_key: str) -> list[dict[str, Any]]:
        out = []
        for item in items:
            entry: dict[str, Any] = {api_key: item[target_key], "Event": [item["Event"]]}
            rules = (item.get("Filter") or {}).get("S3Key", {}).get("Rules")
            if rules:
                entry["Filter"] = {
                    "S3Key": {"FilterRule": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
                }
            out.append(entry)
        return out

    config: dict[str, Any] = {}
    if cfn.get("LambdaConfigurations"):
        config["CloudFunctionConfiguration"] = convert(
            cfn["LambdaConfigurations"], "Function", "CloudFunction"
        )
    if cfn.get("QueueConfigurations"):
        config["QueueConfiguration"] = convert(cfn["QueueConfigurations"], "Queue", "Queue")
    if cfn.get("TopicConfigurations"):
        config["TopicConfiguration"] = convert(cfn["TopicConfigurations"], "Topic", "Topic")
    if _bool((cfn.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled", False)):
        config["EventBridgeConfiguration"] = {}
    return config


class CloudFormationGaps:
    def __init__(self, patches: Patches) -> None:
        self.patches = patches
        self.recorded: dict[str, type[LocalResource]] = {}

    def _around_create(
        self,
        model: Any,
        before: Callable[[dict[str, Any], str], None] | None = None,
        after: Callable[[Any, dict[str, Any], str, str], None] | None = None,
    ) -> None:
        """Wrap moto's `model.create_from_cloudformation_json`: `before(cloudformation_json, logical_id)`
        mends what moto reads; `after(resource, properties, account_id, region)` restores what it dropped."""
        original = model.create_from_cloudformation_json

        def create(
            cls: Any,
            /,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> Any:
            if before is not None:
                before(cloudformation_json, resource_name)
            resource = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
            if after is not None:
                after(resource, cloudformation_json.get("Properties", {}), account_id, region_name)
            return resource

        self.patches.set(model, "create_from_cloudformation_json", classmethod(create))

    def _vpcs(self) -> None:
        """moto's CloudFormation drops EnableDnsHostnames/EnableDnsSupport (awsvpc tasks need the first)."""
        from moto.ec2.models.vpcs import VPC

        def dns_settings(vpc: Any, props: dict[str, Any], account_id: str, region: str) -> None:
            if "EnableDnsHostnames" in props:
                vpc.enable_dns_hostnames = _bool(props["EnableDnsHostnames"])
            if "EnableDnsSupport" in props:
                vpc.enable_dns_support = _bool(props["EnableDnsSupport"])

        self._around_create(VPC, after=dns_settings)

    def _task_definitions(self) -> None:
        """moto's CloudFormation registers task definitions with family, containers, volumes and memory
        only: NetworkMode (awsvpc), RequiresCompatibilities, Cpu and the roles are dropped."""
        from moto.core.utils import pascal_to_camelcase, remap_nested_keys
        from moto.ecs.models import TaskDefinition, ecs_backends

        def create_task_definition(
            cls: Any,
            /,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> Any:
            props = cloudformation_json["Properties"]
            return ecs_backends[account_id][region_name].register_task_definition(
                family=props.get("Family", resource_name),
                container_definitions=remap_nested_keys(
                    props.get("ContainerDefinitions", []), pascal_to_camelcase
                ),
                volumes=remap_nested_keys(props.get("Volumes", []), pascal_to_camelcase),
                network_mode=props.get("NetworkMode"),
                requires_compatibilities=props.get("RequiresCompatibilities"),
                cpu=props.get("Cpu"),
                memory=props.get("Memory"),
                task_role_arn=props.get("TaskRoleArn"),
                execution_role_arn=props.get("ExecutionRoleArn"),
                ephemeral_storage=remap_nested_keys(props["EphemeralStorage"], pascal_to_camelcase)
                if "EphemeralStorage" in props
                else None,
                runtime_platform=remap_nested_keys(props["RuntimePlatform"], pascal_to_camelcase)
                if "RuntimePlatform" in props
                else None,
            )

        self.patches.set(
            TaskDefinition, "create_from_cloudformation_json", classmethod(create_task_definition)
        )

    def _physical_ids(self) -> None:
        """`Ref` of these returns moto's Python object (their models lack physical_resource_id)."""
        from moto.awslambda.models import LambdaFunction, LambdaVersion, LayerVersion, lambda_backends
        from moto.events.models import EventBus

        self.patches.set(EventBus, "physical_resource_id", property(lambda bus: bus.name))
        self.patches.set(LayerVersion, "physical_resource_id", property(lambda layer: layer.arn))

        def version_arn(version: Any, props: dict[str, Any], account_id: str, region: str) -> None:
            function = lambda_backends[account_id][region].get_function(props["FunctionName"])
            version.arn = f"{function.function_arn.split(':$LATEST')[0]}:{version.version}"

        def string_environment(cloudformation_json: dict[str, Any], logical_id: str) -> None:
            # CloudFormation passes environment values as strings (a Number parameter arrives as "900").
            variables = (cloudformation_json.get("Properties", {}).get("Environment") or {}).get("Variables")
            if isinstance(variables, dict):
                for key, value in variables.items():
                    variables[key] = _substitution(value)

        self._around_create(LambdaVersion, after=version_arn)
        self._around_create(LambdaFunction, before=string_environment)
        self.patches.set(
            LambdaVersion,
            "physical_resource_id",
            property(lambda version: getattr(version, "arn", str(version.version))),
        )

    def install(self) -> None:
        import moto.cloudformation.parsing as parsing
        from moto.s3.models import FakeBucket
        from moto.stepfunctions.models import StateMachine

        original_lookup = parsing.resource_class_from_type

        def resource_class_from_type(resource_type: str) -> Any:
            if resource_type in LOCAL_MODELS:
                return LOCAL_MODELS[resource_type]
            if resource_type in parsing.NULL_MODELS or resource_type.startswith("Custom::"):
                return original_lookup(resource_type)
            if resource_type not in parsing.get_model_map():
                if resource_type not in self.recorded:
                    log.info("%s: not emulated locally; recorded so Ref/GetAtt resolve", resource_type)
                    self.recorded[resource_type] = _recorded_model(resource_type)
                return self.recorded[resource_type]
            return original_lookup(resource_type)

        def bucket_settings(bucket: Any, props: dict[str, Any], account_id: str, region: str) -> None:
            versioning = (props.get("VersioningConfiguration") or {}).get("Status")
            if versioning:
                bucket.versioning_status = versioning
            notifications = bucket_notification_config(props.get("NotificationConfiguration") or {})
            if notifications:
                bucket.set_notification_configuration(notifications)
            lifecycle = bucket_lifecycle_rules(props.get("LifecycleConfiguration") or {})
            if lifecycle:
                bucket.set_lifecycle(lifecycle)

        from moto.apigateway.models import RestAPI

        def api_name(cloudformation_json: dict[str, Any], logical_id: str) -> None:
            # SAM names the API in its OpenAPI Body (info.title), not in `Name` (which moto requires).
            props = cloudformation_json.setdefault("Properties", {})
            if "Name" not in props:
                props["Name"] = (props.get("Body") or {}).get("info", {}).get("title") or logical_id

        original_name = parsing.generate_resource_name

        def generate_resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
            name: str = original_name(resource_type, stack_name, logical_id)
            return name.lower() if resource_type in LOWERCASE_NAMES else name

        self.patches.set(parsing, "generate_resource_name", generate_resource_name)

        from moto.cloudformation.models import Stack

        original_parse: Any = Stack.parse_template

        def parse_template(template: str) -> dict[str, Any]:
            # moto reads every template with pure-Python YAML first (a second per large JSON template).
            try:
                parsed: dict[str, Any] = json.loads(template)
                return parsed
            except ValueError:
                return dict(original_parse(template))

        self.patches.set(Stack, "parse_template", staticmethod(parse_template))
        self._physical_ids()
        self._task_definitions()
        self._vpcs()
        self._around_create(RestAPI, before=api_name)
        self.patches.set(parsing, "resource_class_from_type", resource_class_from_type)
        self._around_create(FakeBucket, after=bucket_settings)
        self.patches.set(StateMachine, "create_from_cloudformation_json", classmethod(_create_state_machine))
        self.patches.set(StateMachine, "delete_from_cloudformation_json", classmethod(_delete_state_machine))
        self.patches.set(StateMachine, "update_from_cloudformation_json", classmethod(_update_state_machine))
