"""`storyflow models check|pack|push|status` and `storyflow sam-env`, over moto (sagemaker-core does the
S3 upload and the endpoint descriptions against it)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from storyflow_stereo import model_layout as stereo_layout
from storyflow_stereo.engines import stereocrafter
from storyflow_tts import model_layout as tts_layout
from storyflow_video import model_layout as video_layout
from typer.testing import CliRunner

from storyflow_cli import commands
from storyflow_cli import models as cli_models

RUNNER = CliRunner()
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/model"


def invoke(*args: str) -> Any:
    return RUNNER.invoke(commands.app, ["models", *args])


def make_folder(root: Path, layout: Any) -> Path:
    """A complete folder for a layout: its required files and a weights file in each weights folder."""
    for rel in layout.REQUIRED_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{}")
    for rel in getattr(layout, "REQUIRED_WEIGHT_DIRS", ()):
        (root / rel).mkdir(parents=True, exist_ok=True)
        (root / rel / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"\0" * 64)
    if layout is tts_layout:
        (root / "voices").mkdir(exist_ok=True)
        (root / "voices" / "af_heart.pt").write_bytes(b"\0" * 64)
    return root


# --- the layouts are the engines' own ------------------------------------------------------------------


def test_each_kind_checks_with_its_engines_own_layout() -> None:
    assert cli_models.MODEL_KINDS["stereo"].layout is stereo_layout
    assert stereocrafter.REQUIRED_FILES is stereo_layout.REQUIRED_FILES
    assert stereocrafter.missing_model_files is stereo_layout.missing_model_files
    assert cli_models.MODEL_KINDS["tts"].layout is tts_layout
    assert cli_models.MODEL_KINDS["video"].layout is video_layout


@pytest.mark.parametrize("kind", sorted(cli_models.MODEL_KINDS))
def test_a_complete_folder_passes_the_check(kind: str, tmp_path: Path) -> None:
    make_folder(tmp_path, cli_models.MODEL_KINDS[kind].layout)
    result = invoke("check", kind, str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    make_folder(tmp_path, stereo_layout)
    (tmp_path / "DepthCrafter" / "config.json").unlink()
    result = invoke("check", "stereo", str(tmp_path))
    assert result.exit_code == 1
    assert "DepthCrafter/config.json" in result.output
    assert "model_index.json" not in result.output


def test_a_folder_without_weights_names_the_weights(tmp_path: Path) -> None:
    make_folder(tmp_path, video_layout)
    for weights in (tmp_path / "transformer").glob("*.safetensors"):
        weights.unlink()
    result = invoke("check", "video", str(tmp_path))
    assert result.exit_code == 1 and "transformer/*.safetensors" in result.output


def test_another_engines_layout_lists_everything_it_lacks(tmp_path: Path) -> None:
    make_folder(tmp_path, tts_layout)  # a Kokoro folder offered as StereoCrafter weights
    result = invoke("check", "stereo", str(tmp_path))
    assert result.exit_code == 1
    assert all(rel.split("/")[-1] in result.output for rel in stereo_layout.REQUIRED_FILES)


def test_the_engines_nested_weights_folder_is_accepted(tmp_path: Path) -> None:
    make_folder(tmp_path / "weights", stereo_layout)
    result = invoke("check", "stereo", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "weights") in result.output.replace("\n", "")


def test_an_unknown_kind_or_folder_is_a_usage_error(tmp_path: Path) -> None:
    assert invoke("check", "music", str(tmp_path)).exit_code == 2
    assert invoke("check", "stereo", str(tmp_path / "nope")).exit_code == 2


# --- pack ----------------------------------------------------------------------------------------------


def test_pack_writes_the_layout_at_the_archives_root(tmp_path: Path) -> None:
    source = make_folder(tmp_path / "src" / "weights", stereo_layout).parent
    output = tmp_path / "out" / "model.tar.gz"
    result = invoke("pack", "stereo", str(source), "-o", str(output))
    assert result.exit_code == 0, result.output
    with tarfile.open(output, "r:gz") as tar:
        names = set(tar.getnames())
    assert set(stereo_layout.REQUIRED_FILES) <= names
    assert not any(name.startswith("weights/") for name in names)
    assert invoke("check", "stereo", str(output)).exit_code == 0


def test_pack_follows_symlinks(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", tts_layout)
    blob = tmp_path / "blob.pth"
    blob.write_bytes(b"weights")
    (folder / tts_layout.WEIGHTS).unlink()
    (folder / tts_layout.WEIGHTS).symlink_to(blob)  # how a Hugging Face cache lays out its files
    output = tmp_path / "model.tar.gz"
    assert invoke("pack", "tts", str(folder), "-o", str(output)).exit_code == 0
    with tarfile.open(output) as tar:
        member = tar.getmember(tts_layout.WEIGHTS)
    assert member.isfile() and member.size == len(b"weights")


def test_pack_refuses_an_incomplete_folder_and_writes_nothing(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", tts_layout)
    (folder / "config.json").unlink()
    output = tmp_path / "model.tar.gz"
    result = invoke("pack", "tts", str(folder), "-o", str(output))
    assert result.exit_code == 1 and "config.json" in result.output
    assert not output.exists()


def test_check_of_an_archive_with_a_wrapping_folder_says_so(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "kokoro", tts_layout)
    archive = tmp_path / "wrapped.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="kokoro")  # SageMaker would unpack it to /opt/ml/model/kokoro/
    result = invoke("check", "tts", str(archive))
    assert result.exit_code == 1 and "config.json" in result.output


# --- push and status against a moto stack --------------------------------------------------------------

STACK_TEMPLATE = {
    "Resources": {
        "OutputBucket": {"Type": "AWS::S3::Bucket"},
        "StereoModel": {
            "Type": "AWS::SageMaker::Model",
            "Properties": {
                "ExecutionRoleArn": ROLE,
                "PrimaryContainer": {
                    "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/stereo:v1",
                    "ModelDataUrl": "s3://old/models/stereo/0/model.tar.gz",
                },
            },
        },
        "StereoEndpointConfig": {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": {"Fn::GetAtt": ["StereoModel", "ModelName"]},
                        "InstanceType": "ml.g4dn.xlarge",
                        "InitialInstanceCount": 1,
                    }
                ]
            },
        },
        "StereoEndpoint": {
            "Type": "AWS::SageMaker::Endpoint",
            "Properties": {
                "EndpointConfigName": {"Fn::GetAtt": ["StereoEndpointConfig", "EndpointConfigName"]}
            },
        },
    },
    "Outputs": {"OutputBucketName": {"Value": {"Ref": "OutputBucket"}}},
}


def _drop_empty_configs(parsed: dict[str, Any], **_: Any) -> None:
    """moto 5.2.5 answers DescribeEndpoint(Config)/DescribeModel with empty DataCaptureConfig,
    AsyncInferenceConfig and VpcConfig objects, which AWS never sends and sagemaker-core's models
    reject: drop them, as AWS would."""
    for key in [k for k, v in parsed.items() if v == {} and k.endswith("Config")]:
        del parsed[key]


@pytest.fixture
def aws_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Given a moto stack with the output bucket and a stereo endpoint under autoscaling."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():

        def session(region: str | None = None) -> boto3.session.Session:
            made = boto3.session.Session(region_name=region or REGION)
            for operation in ("DescribeEndpoint", "DescribeEndpointConfig", "DescribeModel"):
                made.events.register(f"after-call.sagemaker.{operation}", _drop_empty_configs)
            return made

        monkeypatch.setattr(cli_models, "_boto_session", session)
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(StackName="sf", TemplateBody=json.dumps(STACK_TEMPLATE))
        endpoint = cli_models.stack_endpoints("sf", REGION)["stereo"]
        boto3.client("application-autoscaling", region_name=REGION).register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/{endpoint}/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=0,
            MaxCapacity=2,
        )
        yield "sf"


def _artifact(tmp_path: Path, name: str = "weights.tar.gz") -> Path:
    output = tmp_path / name
    assert (
        invoke("pack", "stereo", str(make_folder(tmp_path / "m", stereo_layout)), "-o", str(output)).exit_code
        == 0
    )
    return output


def test_push_uploads_to_the_stacks_model_location_and_prints_the_deploy_line(
    aws_stack: str, tmp_path: Path
) -> None:
    archive = _artifact(tmp_path)
    result = invoke("push", "stereo", str(archive), "--stack", aws_stack)
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("sam deploy --stack-name sf --parameter-overrides StereoModelDataUrl=s3://")
    uri = line.split("=", 1)[1]
    assert uri.endswith("/model.tar.gz") and "/models/stereo/" in uri
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == archive.read_bytes()


def test_push_to_no_such_stack_fails_with_its_name(aws_stack: str, tmp_path: Path) -> None:
    result = invoke("push", "stereo", str(_artifact(tmp_path)), "--stack", "nope")
    assert result.exit_code == 1 and "nope" in result.output


def test_push_refuses_a_wrong_layout_before_uploading(aws_stack: str, tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(make_folder(tmp_path / "k", tts_layout), arcname=".")
    result = invoke("push", "stereo", str(archive), "--stack", aws_stack)
    assert result.exit_code == 1 and "DepthCrafter/config.json" in result.output
    assert "Contents" not in boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=cli_models.stack_outputs(aws_stack, REGION)["OutputBucketName"]
    )


def test_status_shows_each_endpoint_its_model_image_and_scaling(aws_stack: str) -> None:
    [row] = cli_models.stack_status(aws_stack, REGION)
    assert (row.kind, row.status) == ("stereo", "InService")
    assert row.model_data == "s3://old/models/stereo/0/model.tar.gz"
    assert row.image.endswith("/stereo:v1")
    assert row.scaling == "0..2" and row.backlog == "no data"
    result = invoke("status", "--stack", aws_stack)
    assert result.exit_code == 0, result.output
    assert "stereo" in result.output and "InService" in result.output
    assert "s3://old/models/stereo/0/model.tar.gz" in result.output


def test_status_of_no_such_stack_fails(aws_stack: str) -> None:
    result = invoke("status", "--stack", "nope")
    assert result.exit_code == 1 and "nope" in result.output


def test_help_explains_each_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for word in ("check", "pack", "push", "status", "StereoModelDataUrl", "TtsModelDataUrl", "VideoModelUri"):
        assert word in result.output


# --- sam-env -------------------------------------------------------------------------------------------


def test_sam_env_writes_each_functions_environment_by_logical_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        role = boto3.client("iam").create_role(
            RoleName="fn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )["Role"]["Arn"]
        template = {
            "Resources": {
                "ApiFunction": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Runtime": "python3.12",
                        "Handler": "app.handler",
                        "Role": role,
                        "Code": {"ZipFile": "def handler(e, c): return e"},
                        "Environment": {"Variables": {"JOBS_TABLE": "sf-JobsTable-1", "STAGE": "dev"}},
                    },
                }
            }
        }
        boto3.client("cloudformation").create_stack(StackName="sf", TemplateBody=json.dumps(template))
        result = RUNNER.invoke(commands.app, ["sam-env", "--stack", "sf"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"ApiFunction": {"JOBS_TABLE": "sf-JobsTable-1", "STAGE": "dev"}}
        missing = RUNNER.invoke(commands.app, ["sam-env", "--stack", "nope"])
        assert missing.exit_code == 1 and "nope" in missing.output
