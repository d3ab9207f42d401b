"""The IAM policy documents, as data, each statement scoped to this deployment's resources.

Three roles:
- the runtime's execution role (trusted by AgentCore in this account): pulls its image, writes
  its own logs, traces and metrics, calls its Bedrock models, connects to its Aurora DSQL
  cluster, gets its workload access tokens and GitHub tokens, and may assume the user-data
  role, nothing else. It has no S3 access of its own: with it, any code in the container
  could read every user's files.
- the user-data role, which the app assumes per user with a session policy narrowed to
  `user_data/<user>/` (app/workspace/bucket.py, S3_USER_ROLE_ARN); this role's own policy
  covers `user_data/` only.
- the probe's role: pulls its image and writes its logs.

Resource "*" appears only where AWS defines no narrower resource for an action; each such
statement says so.
"""

from __future__ import annotations

from typing import Any

from deploy.names import Names

Statement = dict[str, Any]
Document = dict[str, Any]
ECR_PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
USER_DATA_OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
]
USER_DATA_LIST_ACTIONS = ["s3:ListBucket", "s3:ListBucketVersions"]
USER_DATA_PREFIX = "user_data/"
METRICS_NAMESPACE = "bedrock-agentcore"


def document(*statements: Statement) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def runtime_trust(names: Names) -> Document:
    """AgentCore may assume the role, and only for runtimes of this account and region (the
    source conditions stop another account's runtime from borrowing it)."""
    return document(
        {
            "Sid": "AgentCoreRuntime",
            "Effect": "Allow",
            "Principal": {"Service": "bedrock-agentcore.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": names.account},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{names.partition}:bedrock-agentcore:"
                    f"{names.region}:{names.account}:*"
                },
            },
        }
    )


def execution_policy(
    names: Names,
    *,
    repositories: list[str],
    models: list[str],
    github_provider: str | None,
    github_secret_arn: str | None,
    database_cluster: str | None = None,
    database_role: str = "admin",
) -> Document:
    """The runtime's permissions. `repositories` are the ARNs of the repositories its image
    comes from, `models` the Bedrock model and inference-profile ARNs it may call,
    `database_cluster` the Aurora DSQL cluster's ARN it connects to as `database_role`."""
    statements = [
        *pull_statements(repositories),
        *log_statements(names, names.runtime),
        *telemetry_statements(),
        {
            "Sid": "AssumeUserDataRole",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Resource": names.role_arn(names.user_role),
        },
        {
            "Sid": "InvokeModels",
            "Effect": "Allow",
            "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
            "Resource": sorted(set(models)),
        },
        {
            "Sid": "WorkloadAccessTokens",
            "Effect": "Allow",
            "Action": [
                "bedrock-agentcore:GetWorkloadAccessToken",
                "bedrock-agentcore:GetWorkloadAccessTokenForJWT",
                "bedrock-agentcore:GetWorkloadAccessTokenForUserId",
            ],
            "Resource": workload_identity_arns(names),
        },
    ]
    if database_cluster:
        statements.append(database_statement(database_cluster, database_role))
    if github_provider:
        vault = f"{_agentcore(names)}:token-vault/default"
        statements.append(
            {
                "Sid": "GitHubTokens",
                "Effect": "Allow",
                "Action": [
                    "bedrock-agentcore:GetResourceOauth2Token",
                    "bedrock-agentcore:CompleteResourceTokenAuth",
                ],
                "Resource": [
                    vault,
                    f"{vault}/oauth2credentialprovider/{github_provider}",
                    *workload_identity_arns(names),
                ],
            }
        )
    if github_secret_arn:
        statements.append(
            {
                "Sid": "GitHubClientSecret",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": github_secret_arn,
            }
        )
    return document(*statements)


def database_statement(cluster_arn: str, role: str = "admin") -> Statement:
    """The app signs a token for each new connection (app/db/engine.py): DSQL authorizes
    `DbConnectAdmin` for its `admin` role and `DbConnect` for any other, on the cluster."""
    return {
        "Sid": "ConnectDatabase",
        "Effect": "Allow",
        "Action": "dsql:DbConnectAdmin" if role == "admin" else "dsql:DbConnect",
        "Resource": cluster_arn,
    }


def workload_identity_arns(names: Names) -> list[str]:
    """The runtime's workload identity is named after its id, `<runtime name>-<suffix>`."""
    directory = f"{_agentcore(names)}:workload-identity-directory/default"
    return [directory, f"{directory}/workload-identity/{names.runtime}-*"]


def pull_statements(repositories: list[str]) -> list[Statement]:
    return [
        {
            "Sid": "PullImage",
            "Effect": "Allow",
            "Action": ECR_PULL,
            "Resource": sorted(set(repositories)),
        },
        {
            # AWS rule: GetAuthorizationToken has no resource type; it only opens the registry
            # login, and the pull itself is limited to the repositories above.
            "Sid": "RegistryLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
    ]


def log_statements(names: Names, runtime: str) -> list[Statement]:
    groups = (
        f"arn:{names.partition}:logs:{names.region}:{names.account}:log-group:"
        f"{names.log_group_prefix(runtime)}*"
    )
    return [
        {
            "Sid": "OwnLogGroups",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:DescribeLogStreams"],
            "Resource": groups,
        },
        {
            "Sid": "OwnLogStreams",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{groups}:log-stream:*",
        },
        {
            # AWS rule: DescribeLogGroups is authorized on the account's log-group list, not
            # on one group; it reveals names only.
            "Sid": "FindLogGroups",
            "Effect": "Allow",
            "Action": "logs:DescribeLogGroups",
            "Resource": f"arn:{names.partition}:logs:{names.region}:{names.account}:log-group:*",
        },
    ]


def telemetry_statements() -> list[Statement]:
    return [
        {
            # AWS rule: these X-Ray actions have no resource types.
            "Sid": "Traces",
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
            ],
            "Resource": "*",
        },
        {
            # AWS rule: PutMetricData has no resource type; the namespace condition narrows it.
            "Sid": "Metrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
        },
    ]


def user_data_trust(names: Names) -> Document:
    """Only the runtime's execution role may assume the user-data role."""
    return document(
        {
            "Sid": "RuntimeAssumesPerUser",
            "Effect": "Allow",
            "Principal": {"AWS": names.role_arn(names.execution_role)},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    )


def user_data_policy(names: Names) -> Document:
    """Everything the app's per-user session policy may grant, and no more: objects under
    `user_data/`, and listing only that prefix."""
    bucket = f"arn:{names.partition}:s3:::{names.bucket}"
    return document(
        {
            "Sid": "UserDataObjects",
            "Effect": "Allow",
            "Action": USER_DATA_OBJECT_ACTIONS,
            "Resource": f"{bucket}/{USER_DATA_PREFIX}*",
        },
        {
            "Sid": "ListUserData",
            "Effect": "Allow",
            "Action": USER_DATA_LIST_ACTIONS,
            "Resource": bucket,
            "Condition": {"StringLike": {"s3:prefix": [f"{USER_DATA_PREFIX}*"]}},
        },
    )


def probe_policy(names: Names, repositories: list[str]) -> Document:
    return document(
        *pull_statements(repositories),
        *log_statements(names, names.probe_runtime),
    )


def repository_arn(image_uri: str, partition: str = "aws") -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/<name>:<tag>` -> the repository's ARN."""
    registry, _, rest = image_uri.partition("/")
    account, _, _, region = registry.split(".")[:4]
    name = rest.split("@")[0].split(":")[0]  # repository names hold no ':' or '@'
    return f"arn:{partition}:ecr:{region}:{account}:repository/{name}"


def _agentcore(names: Names) -> str:
    return f"arn:{names.partition}:bedrock-agentcore:{names.region}:{names.account}"
