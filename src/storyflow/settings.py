"""Environment of the Lambdas, read per call (the local cloud runs every function in one process)."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field


class Settings(BaseModel):
    jobs_table: str = Field("", alias="JOBS_TABLE")
    segments_table: str = Field("", alias="SEGMENTS_TABLE")
    callbacks_table: str = Field("", alias="CALLBACKS_TABLE")
    task_state_table: str = Field("", alias="TASK_STATE_TABLE")
    idempotency_table: str = Field("", alias="IDEMPOTENCY_TABLE")
    input_bucket: str = Field("", alias="INPUT_BUCKET")
    output_bucket: str = Field("", alias="OUTPUT_BUCKET")
    event_bus_name: str = Field("", alias="EVENT_BUS_NAME")
    stereo_state_machine_arn: str = Field("", alias="STEREO_STATE_MACHINE_ARN")
    video_state_machine_arn: str = Field("", alias="VIDEO_STATE_MACHINE_ARN")
    tts_state_machine_arn: str = Field("", alias="TTS_STATE_MACHINE_ARN")
    story_state_machine_arn: str = Field("", alias="STORY_STATE_MACHINE_ARN")
    scenes_model_id: str = Field("", alias="SCENES_MODEL_ID")  # Bedrock model that writes story scenes
    upload_expires_seconds: int = Field(3600, alias="UPLOAD_EXPIRES_SECONDS")
    download_expires_seconds: int = Field(3600, alias="DOWNLOAD_EXPIRES_SECONDS")
    callback_ttl_seconds: int = Field(3 * 86400, alias="CALLBACK_TTL_SECONDS")
    job_kind: str = Field("", alias="JOB_KIND")  # the kind an intake function takes from its queue
    dead_letter_queue_url: str = Field("", alias="DEAD_LETTER_QUEUE_URL")  # where unrecordable messages go

    @classmethod
    def from_env(cls) -> Settings:
        return cls.model_validate(dict(os.environ))

    def require(self, name: str) -> str:
        value: str = getattr(self, name)
        if not value:
            raise RuntimeError(
                f"{type(self).model_fields[name].alias} is not set in this function's environment"
            )
        return value
