"""The exact Bedrock ARNs the runtime may invoke, for the model and inference-profile ids in the
settings.

A cross-region inference profile (`us.anthropic...`) is invoked through the profile and served
by a foundation model in any of the profile's regions, so both the profile's ARN and each
region's model ARN must be allowed. Bedrock lists those regions (GetInferenceProfile), so the
policy names them instead of allowing every region.
"""

from __future__ import annotations

import re

from deploy.context import Context

PROFILE = re.compile(r"^(us|eu|apac|jp|au|ca|us-gov|global)\.")


def arns(ctx: Context) -> list[str]:
    found: list[str] = []
    for model in ctx.settings.models:
        found += model_arns(ctx, model)
    return sorted(set(found))


def model_arns(ctx: Context, model: str) -> list[str]:
    names = ctx.names
    if model.startswith("arn:") and ":foundation-model/" in model:
        return [model]
    if not (model.startswith("arn:") or PROFILE.match(model)):
        return [f"arn:{names.partition}:bedrock:{names.region}::foundation-model/{model}"]
    profile = ctx.clients.bedrock.get_inference_profile(inferenceProfileIdentifier=model)
    found = [str(profile["inferenceProfileArn"])]
    found += [str(m["modelArn"]) for m in profile["models"]]
    if model.startswith("global."):
        # Global profiles route beyond listed regions; AWS asks for the region-less model ARN.
        found.append(f"arn:{names.partition}:bedrock:::foundation-model/{model.split('.', 1)[1]}")
    return found
