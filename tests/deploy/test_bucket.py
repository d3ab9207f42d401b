"""The workspace bucket as `up` leaves it, read back from S3."""

from __future__ import annotations

from tests.deploy.conftest import Stack


def test_bucket_is_private_encrypted_versioned_and_expires_old_versions(stack: Stack) -> None:
    outputs = stack.up(DEPLOY_NONCURRENT_VERSION_DAYS="5")
    s3, name = stack.clients.s3, str(outputs.bucket)

    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 5
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    assert '"aws:SecureTransport": "false"' in s3.get_bucket_policy(Bucket=name)["Policy"]
    tags = s3.get_bucket_tagging(Bucket=name)["TagSet"]
    assert tags == [{"Key": "agent-web:deployment", "Value": stack.prefix}]


def test_bucket_setting_changed_by_hand_is_put_back(stack: Stack) -> None:
    outputs = stack.up()
    s3, name = stack.clients.s3, str(outputs.bucket)
    s3.delete_public_access_block(Bucket=name)

    stack.up()

    assert stack.changing_calls() == ["s3:PutPublicAccessBlock"]
    assert f"✓ S3 bucket {name} (updated: public access block)" in stack.printed
