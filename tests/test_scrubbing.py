"""No credential leaves the process: the scrubber's corpus (each format in, ordinary text untouched), end to end through
a Monitor with a store (logs, every stored row, the LangSmith outbox, the metrics), and the opt-in personal data
redactors.

The credential samples are public test fixtures, not live credentials. Those marked [detect-secrets] come from
Yelp/detect-secrets, tests/plugins/<plugin>_test.py at commit 5e14193 (Apache License 2.0); those marked [gitleaks]
from gitleaks/gitleaks, cmd/generate/config/rules/<rule>.go at commit b58d3f1 (MIT License, Copyright (c) 2019
Zachary Rice). Samples marked [synthetic] are made up in the shape those rules describe.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import timeit
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from prometheus_client import CollectorRegistry, generate_latest

import langchain_llmmonitor
from langchain_llmmonitor import CaptureConfig, Monitor, MonitorConfig, Redactor, SamplingConfig
from langchain_llmmonitor.core.feedback import judge_feedback_items
from langchain_llmmonitor.core.judging import EvaluationInput, Scores, Verdict
from langchain_llmmonitor.core.records import EvaluationRecord, InvocationRecord, utcnow
from langchain_llmmonitor.core.redaction import (
    CARDS,
    EMAILS,
    PERSONAL_DATA,
    PHONES,
    redact_cards,
    redact_emails,
    redact_phones,
)
from langchain_llmmonitor.core.text import REDACTED, clip, describe_error, scrub
from langchain_llmmonitor.feedback import FeedbackRecorder
from langchain_llmmonitor.quality.judges.offline import OfflineJudge
from langchain_llmmonitor.storage.store import Store

from .conftest import fake_model

PROMPT = ChatPromptTemplate.from_messages([("human", "{question}")])

AWS_KEY_ID = "AKIALALEMEL33243OLIB"  # [gitleaks] aws.go
GITHUB_TOKEN = "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"  # [detect-secrets] github_token
JWT = (  # [gitleaks] jwt.go
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VybmFtZTpib2IifQ.HcfCW67Uda-0gz54ZWTqmtgJnZeNem0Q757eTa9EZuw"
)
DB_PASSWORD = "correcthorsebatterystaple9"  # [synthetic]
DB_URL = f"postgresql://monitor:{DB_PASSWORD}@db.internal:5432/llm"
STRIPE_KEY = "sk_live_ReTllpYQYfIZu2Jnf2lAPFjD"  # [detect-secrets] stripe_key
SLACK_TOKEN = "xoxb-781236542736-2364535789652-GkwFDQoHqzXDVsC6GzqYUypD"  # [gitleaks] slack.go
LEAKED = (AWS_KEY_ID, GITHUB_TOKEN, JWT, DB_PASSWORD, STRIPE_KEY, SLACK_TOKEN)

PRIVATE_KEY = (  # [gitleaks] privatekey.go
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpQIBAAKCAQEAn6/O8li+SX4m98LLYt/PKSzEmQ++ZBD7Loh9P13f4yQ92EF3\n"
    "yxR5MsXFu9PRsrYQA7/4UTPHiC4y2sAVCBg4C2yyBpUEtMQjyCESi6Y=\n"
    "-----END RSA PRIVATE KEY-----"
)
AZURE_ACCOUNT_KEY = (  # [detect-secrets] azure_storage_key
    "lJzRc1YdHaAA2KCNJJ1tkYwF/+mKK6Ygw0NGe170Xu592euJv2wYUtBlV8z+qnlcNQSnIYVTkLWntUO1F8j8rQ=="
)
SLACK_CONFIG_TOKEN = (  # [gitleaks] slack.go
    "xoxe.xoxp-1-Mi0yLTM0MTQwNDE0MDE3Ni0zNjU5NDY0Njg4MTctNTE4MjA3NTQ5NjA4MC01NDEyOTYyODY5NzUxLThhMTBjZmI1ZWIzMGIwNTg0"
    "ZDdmMDI5Y2UxNzVlZWVhYzU2ZWQyZTZiODNjNDZiMGUxMzRlNmNjNDEwYmQxMjQ"
)
ANTHROPIC_KEY = (  # [gitleaks] anthropic.go
    "sk-ant-api03-abc123xyz-456def789ghij-klmnopqrstuvwx-3456yza789bcde-1234fghijklmnopby56aaaogaopaaaabc123xyzAA"
)
OPENAI_PROJECT_KEY = (  # [gitleaks] openai.go
    "sk-proj-SevzWEV_NmNnMndQ5gn6PjFcX_9ay5SEKse8AL0EuYAB0cIgFW7Equ3vCbUbYShvii6L3rBw3WT3BlbkFJdD9FqO9Z3BoBu9F-KFR6YJ"
    "tvW6fUfqg2o2Lfel3diT3OCRmBB24hjcd_uLEjgr9tCqnnerVw8A"
)
STRIPE_TEST_KEY = (  # [gitleaks] stripe.go
    "sk_test_51OuEMLAlTWGaDypq4P5cuDHbuKeG4tAGPYHJpEXQ7zE8mKK3jkhTFPvCxnSSK5zB5EQZrJsYdsatNmAHGgb0vSKD00GTMSWRHs"
)
GITHUB_BODY = GITHUB_TOKEN.removeprefix("ghp_")

# (text, the part that must be gone)
CREDENTIALS = [
    # Cloud keys
    pytest.param("AKIAZZZZZZZZZZZZZZZZ", "AKIAZZZZZZZZZZZZZZZZ", id="aws-akia-detect-secrets"),
    pytest.param("A3T0ZZZZZZZZZZZZZZZZ", "A3T0ZZZZZZZZZZZZZZZZ", id="aws-a3t-detect-secrets"),
    pytest.param("ASIAZZZZZZZZZZZZZZZZ", "ASIAZZZZZZZZZZZZZZZZ", id="aws-asia-sts-detect-secrets"),
    pytest.param("ABIAZZZZZZZZZZZZZZZZ", "ABIAZZZZZZZZZZZZZZZZ", id="aws-abia-detect-secrets"),
    pytest.param("ACCAZZZZZZZZZZZZZZZZ", "ACCAZZZZZZZZZZZZZZZZ", id="aws-acca-detect-secrets"),
    pytest.param(f"key id {AWS_KEY_ID} rejected", AWS_KEY_ID, id="aws-key-id-gitleaks"),
    pytest.param("aws_access_key: AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", id="aws-documented-example-gitleaks"),
    pytest.param(
        'aws_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        id="aws-secret-quoted-detect-secrets",
    ),
    pytest.param(
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        id="aws-secret-env-detect-secrets",
    ),
    pytest.param(
        "the AWS secret key is wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        id="aws-secret-in-prose-detect-secrets",
    ),
    pytest.param(
        "AIzaSyNHxIf32IQ1a1yjl3ZJIqKZqzLAK1XhDk-",
        "AIzaSyNHxIf32IQ1a1yjl3ZJIqKZqzLAK1XhDk",
        id="google-api-key-gitleaks",
    ),
    pytest.param("AIzaSyA-0123456789abcdefghijklmnopqrs", "0123456789abcdefghij", id="google-api-key-existing"),
    pytest.param(
        f"DefaultEndpointsProtocol=https;AccountName=shop;AccountKey={AZURE_ACCOUNT_KEY};EndpointSuffix=core.windows.net",
        AZURE_ACCOUNT_KEY,
        id="azure-storage-connection-string-detect-secrets",
    ),
    pytest.param(
        "Endpoint=sb://shop.servicebus.windows.net/;SharedAccessKeyName=Root;"
        "SharedAccessKey=Vh0LHqhU3CFMPd9Rx2bA+qXvS2dXbF0yPmH4rCqZk1E=",
        "Vh0LHqhU3CFMPd9Rx2bA+qXvS2dXbF0yPmH4rCqZk1E=",
        id="azure-service-bus-connection-string-synthetic",
    ),
    pytest.param(
        "GET https://shop.blob.core.windows.net/c/b.txt?sv=2022-11-02&sr=b&sp=r&sig=k3Bf9Qz%2Bq0Lr7y1VwXcT%3D&se=2030",
        "k3Bf9Qz%2Bq0Lr7y1VwXcT%3D",
        id="azure-sas-signature-synthetic",
    ),
    pytest.param(
        "client_secret=bP88Q~rcBcYjzzOhg1Hnn76Wm3jGgakZiZ.8vMgR",
        "bP88Q~rcBcYjzzOhg1Hnn76Wm3jGgakZiZ.8vMgR",
        id="azure-ad-client-secret-gitleaks",
    ),
    pytest.param(
        "(use the client secret: QtT8Q~9C-_Ij~RouHVpD2Tuf3oHWGh.DQ3kcjbAn)",
        "QtT8Q~9C-_Ij~RouHVpD2Tuf3oHWGh.DQ3kcjbAn",
        id="azure-ad-client-secret-in-prose-gitleaks",
    ),
    # VCS and chat tokens
    pytest.param(GITHUB_TOKEN, GITHUB_TOKEN, id="github-pat-detect-secrets"),
    *(
        pytest.param(f"token {prefix}_{GITHUB_BODY}", GITHUB_BODY, id=f"github-{prefix}-synthetic")
        for prefix in ("gho", "ghu", "ghs", "ghr")
    ),
    pytest.param(
        "github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678",
        "11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789",
        id="github-fine-grained-synthetic",
    ),
    pytest.param("glpat-hellOworld380_testin", "hellOworld380_testin", id="gitlab-pat-detect-secrets"),
    pytest.param("gldt-HwllOuhfw-wu0rlD_yep", "HwllOuhfw-wu0rlD_yep", id="gitlab-deploy-detect-secrets"),
    pytest.param(
        "glsoat-PREfix_helloworld380_testin_pretty_long_token_long",
        "PREfix_helloworld380",
        id="gitlab-oauth-detect-secrets",
    ),
    pytest.param("GR1348941PREfix_helloworld380", "PREfix_helloworld380", id="gitlab-runner-detect-secrets"),
    pytest.param("glcbt-helloworld380_testin", "helloworld380_testin", id="gitlab-cicd-detect-secrets"),
    pytest.param("glimt-my-tokens_are-correctAB38", "my-tokens_are-correctAB38", id="gitlab-mail-detect-secrets"),
    pytest.param(
        "glptt-Need5_T00-be-exactly-40-chars--ELse_fail", "Need5_T00-be-exactly", id="gitlab-trigger-detect-secrets"
    ),
    pytest.param(
        "glagent-Need5_T00-bee-longer-than-50_chars-or-else-failING",
        "Need5_T00-bee-longer",
        id="gitlab-agent-detect-secrets",
    ),
    *(
        pytest.param(token, token.split("-", 1)[1], id=f"slack-{token[:4]}-detect-secrets")
        for token in (
            "xoxp-523423-234243-234233-e039d02840a0b9379c",
            "xoxo-523423-234243-234233-e039d02840a0b9379c",
            "xoxs-523423-234243-234233-e039d02840a0b9379c",
            "xoxa-2-511111111-31111111111-3111111111111-e039d02840a0b9379c",
            "xoxr-523423-234243-234233-e039d02840a0b9379c",
            "xoxb-34532454-e039d02840a0b9379c",
        )
    ),
    pytest.param(f'"bot_token1": "{SLACK_TOKEN}"', SLACK_TOKEN, id="slack-bot-gitleaks"),
    pytest.param(
        '"user_token1": "xoxp-41684372915-1320496754-45609968301-e708ba56e1517a99f6b5fb07349476ef"',
        "e708ba56e1517a99f6b5fb07349476ef",
        id="slack-user-gitleaks",
    ),
    pytest.param(
        '"token1": "xapp-1-A052FGTS2DL-5171572773297-610b6a11f4b7eb819e87b767d80e6575a3634791acb9a9ead051da879eb5b55e"',
        "610b6a11f4b7eb819e87b767d80e6575a3634791acb9a9ead051da879eb5b55e",
        id="slack-app-gitleaks",
    ),
    pytest.param(f'"access_token1": "{SLACK_CONFIG_TOKEN}"', "Mi0yLTM0MTQwNDE0", id="slack-config-gitleaks"),
    pytest.param(
        '"url_private": "https:\\/\\/files.slack.com\\/files-pri\\/T04MCQMEXQ9-F04MAA1PKE3\\/image.png?'
        't=xoxe-4726837507825-4848681849303-4856614048758-e0b1f3d4cb371f92260edb0d9444d206"',
        "e0b1f3d4cb371f92260edb0d9444d206",
        id="slack-token-in-url-gitleaks",
    ),
    pytest.param(
        "https://hooks.slack.com/services/Txxxxxxxx/Bxxxxxxxx/xxxxxxxxxxxxxxxxxxxxxxxx",
        "Txxxxxxxx/Bxxxxxxxx/xxxxxxxxxxxxxxxxxxxxxxxx",
        id="slack-webhook-detect-secrets",
    ),
    pytest.param(
        "POST https://discord.com/api/webhooks/112233445566778899/aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9dE",
        "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9dE",
        id="discord-webhook-synthetic",
    ),
    # Payment keys
    pytest.param(STRIPE_KEY, STRIPE_KEY, id="stripe-sk-live-detect-secrets"),
    pytest.param("rk_live_5TcWfjKmJgpql9hjpRnwRXbT", "5TcWfjKmJgpql9hjpRnwRXbT", id="stripe-rk-live-detect-secrets"),
    pytest.param("pk_live_j5krY8XTgIcDaHDb3YrsAfCl", "j5krY8XTgIcDaHDb3YrsAfCl", id="stripe-pk-live-detect-secrets"),
    pytest.param(STRIPE_TEST_KEY, "51OuEMLAlTWGaDypq4P5cu", id="stripe-sk-test-gitleaks"),
    pytest.param(
        "rk_prod_51OuEMLAlTWGaDypquDn9aZigaJOsa9NR1w1BxZXs9JlYsVVkv5XDu6aLmAxwt5Tgun5WcSwQMKzQyqV16c9iD4sx00BRijuoon",
        "51OuEMLAlTWGaDypquDn9aZ",
        id="stripe-rk-prod-gitleaks",
    ),
    pytest.param(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id="stripe-webhook-synthetic"
    ),
    # JWTs, with or without "Bearer"
    pytest.param(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
        id="jwt-detect-secrets",
    ),
    pytest.param(
        "eyJ0eXAiOiJKV1QiLA0KImFsZyI6IkhTMjU2In0.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
        "eyJ0eXAiOiJKV1QiLA0KImFsZyI6IkhTMjU2In0",
        id="jwt-unsigned-detect-secrets",
    ),
    pytest.param(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJuYW1lIjoiSm9lIiwKInN0YXR1cyI6ImVtcGxveWVlIgp9",
        "eyJuYW1lIjoiSm9lIiwKInN0YXR1cyI6ImVtcGxveWVlIgp9",
        id="jwt-claims-with-newlines-detect-secrets",
    ),
    pytest.param(f"upstream rejected {JWT}", JWT, id="jwt-without-bearer-gitleaks"),
    pytest.param(f'"Authorization": "Bearer {JWT}"', JWT, id="jwt-bearer-gitleaks"),
    pytest.param(
        'String tokenWithNoneAlg = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0ZXN0LXVzZXIifQ.";',
        "eyJzdWIiOiJ0ZXN0LXVzZXIifQ",
        id="jwt-none-alg-gitleaks",
    ),
    pytest.param(
        "https://dai2-playlistserver.aws.syncbak.com/cpl/20980038/dai2v5/1.0/master.m3u8?access_token="
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IkdyYXkyMDE2MDgyOSJ9.eyJtaWQiOiIyMDk4MDAzOCIsImNpZCI6MjE5MDMsInNpZ"
        "CI6MTU4LCJtZDUiOiIwN2QxMmRjNjAwOTM2MGI0MmY3NjNkNTRiMWIwZjI1NCIsImlhdCI6MTY2MDkxMzU2MCwiZXhwIjoxNjkyNDQ5NTYwLCJp"
        "c3MiOiJTeW5jYmFrIChURykifQ.JrWVgwzIn_RcNuWhkzIjr1i4qjXU1v4n0KFrSzoTQvQ",
        "JrWVgwzIn_RcNuWhkzIjr1i4qjXU1v4n0KFrSzoTQvQ",
        id="jwt-in-query-string-gitleaks",
    ),
    pytest.param("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9", id="bearer-existing"),
    pytest.param(
        '-H "Authorization: Bearer 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"',
        "cYfJAwnBfGcKRKxGwyGItlQlRSFYCLphgG",
        id="bearer-huggingface-gitleaks",
    ),
    pytest.param("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", id="basic-auth-header-synthetic"),
    # Passwords in URLs
    pytest.param("https://username:password@yelp.com", ":password@", id="url-password-detect-secrets"),
    pytest.param(f"could not connect to {DB_URL}", DB_PASSWORD, id="url-password-postgres-synthetic"),
    pytest.param("redis://:hunter2hunter2@cache:6379/0", "hunter2hunter2", id="url-password-no-user-synthetic"),
    pytest.param("amqp://guest:p@ssw0rd@rabbit:5672/", "p@ssw0rd", id="url-password-with-at-sign-synthetic"),
    # PEM private keys
    pytest.param(
        "-----BEGIN RSA PRIVATE KEY-----\nsuper secret private key here\n-----END RSA PRIVATE KEY-----",
        "super secret private key here",
        id="private-key-detect-secrets",
    ),
    pytest.param(
        "some text here\n-----BEGIN PRIVATE KEY-----\nyabba dabba doo",
        "yabba dabba doo",
        id="private-key-cut-short-detect-secrets",
    ),
    pytest.param(f'{{"private_key": "{PRIVATE_KEY}"}}', "MIIEpQIBAAKCAQEAn6", id="private-key-rsa-gitleaks"),
    pytest.param(
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDAC4AWkdwKYSd8\n"
        "Ks14IReLcYgADhoXk56ZzXI=\n-----END PRIVATE KEY-----",
        "MIIEvQIBADANBgkqhkiG9w0B",
        id="private-key-pkcs8-gitleaks",
    ),
    pytest.param(
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQWGBGSVV4YBDAClvRnxezIRy2Yv7SFlzC0iFiRF/O/jePSw+XYhvcrTaqSYTGic\n"
        "=8xQN\n-----END PGP PRIVATE KEY BLOCK-----",
        "lQWGBGSVV4YBDAClvRnxezIRy2Yv7SFlzC0iFiRF",
        id="private-key-pgp-gitleaks",
    ),
    # Model providers and the rest
    pytest.param(
        "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", "Xi8tcNiHV9awbCcvi", id="openai-detect-secrets"
    ),
    pytest.param(OPENAI_PROJECT_KEY, "SevzWEV_NmNnMndQ5gn6PjFcX", id="openai-project-gitleaks"),
    pytest.param(ANTHROPIC_KEY, "abc123xyz-456def789ghij", id="anthropic-gitleaks"),
    pytest.param("key sk-proj-Abc123Def456Ghi789Jkl012 here", "Abc123Def456", id="openai-existing"),
    pytest.param("lsv2_pt_0123456789abcdef0123", "0123456789abcdef", id="langsmith-existing"),
    pytest.param(
        "huggingface-cli login --token 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",
        "jCBaQngSHiHDRYOcsMcifUcysGyaiybUWz",
        id="huggingface-gitleaks",
    ),
    pytest.param(
        "//registry.npmjs.org/:_authToken=npm_" + "a1B2c3D4e5" * 3 + "F6g7H8", "a1B2c3D4e5", id="npm-synthetic"
    ),
    # key=value pairs
    pytest.param('{"api_key": "abcd1234secret"}', "abcd1234secret", id="json-api-key-existing"),
    pytest.param("password=hunter22", "hunter22", id="password-existing"),
    pytest.param("DB_PASS=Tr0ub4dor3 psql failed", "Tr0ub4dor3", id="env-pass-synthetic"),
    pytest.param("X-Api-Key: 0f3a9c2e7b1d4f6a8c0e2b4d6f8a1c3e", "0f3a9c2e7b1d4f6a8c0e", id="api-key-header-synthetic"),
    pytest.param("refresh_token: 'Atzr|IwEBIJ8sYk0pQ'", "Atzr|IwEBIJ8sYk0pQ", id="refresh-token-synthetic"),
    pytest.param("Set-Cookie: sessionid=38afes7a8; HttpOnly", "38afes7a8", id="cookie-synthetic"),
]

ORDINARY = [
    # Ids, hashes and names the monitor logs all the time
    pytest.param(
        "run_id=3f2b9c1e-8d4a-4e1b-9f3c-2a7d5e6b8c90 trace_id=0c4d7f0e-1a2b-4c3d-8e9f-a0b1c2d3e4f5", id="uuids"
    ),
    pytest.param("request_id=req_8f3a2b1c9d0e4f5a6b7c org=org-AbCdEf0123456789", id="request-and-org-ids"),
    pytest.param("commit e83c5163316f89bfbde7d9ab23ca2e25604af290 (sha1)", id="git-sha"),
    pytest.param(
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, md5 098f6bcd4621d373", id="hashes"
    ),
    pytest.param(
        "models: gpt-4o-mini, gpt-4o-2024-08-06, claude-3-5-sonnet-20241022, claude-sonnet-4-5, text-embedding-3-small, "
        "meta-llama/Llama-3.1-8B-Instruct, mistral-large-latest, gemini-1.5-pro-002",
        id="model-names",
    ),
    pytest.param("risk-assessment with scikit-learn on desk-research data; ask-me-anything", id="words-ending-in-sk"),
    pytest.param("next_cursor=eyJwYWdlIjoyLCJzaXplIjo1MH0 page 2", id="base64-json-cursor"),
    pytest.param("2026-03-02T09:30:15.123456+00:00 took 1.2345 s, cost $0.000123", id="times-and-prices"),
    # URLs without a password
    pytest.param("POST https://api.openai.com/v1/chat/completions failed: 503 Service Unavailable", id="https-url"),
    pytest.param("store postgresql+psycopg://db.internal:5432/monitor is unavailable", id="database-url-no-password"),
    pytest.param("http://localhost:8080/items?id=7&page=2#top", id="url-with-query"),
    pytest.param("https://smith.langchain.com/o/1f2e3d4c/projects/p/5a6b7c8d?peek=0c4d7f0e", id="langsmith-url"),
    pytest.param("mailto:support@example.com", id="mailto"),
    pytest.param("http://localhost:5000/<%= @variable %>", id="url-template-detect-secrets"),
    pytest.param('"https://url:8000";@something else', id="url-port-then-at-detect-secrets"),
    pytest.param("'https://url:8000';@something else", id="url-port-quoted-detect-secrets"),
    pytest.param("https://url:8000 @something else", id="url-port-space-detect-secrets"),
    pytest.param("https://url:8000/ @something else", id="url-port-slash-detect-secrets"),
    # Provider errors and judge prose
    pytest.param(
        "RateLimitError: Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min (TPM): "
        "Limit 200000, Used 199000, Requested 1500. Please try again in 450ms.",
        id="openai-rate-limit",
    ),
    pytest.param(
        "BadRequestError: This model's maximum context length is 128000 tokens. However, your messages resulted in "
        "130000 tokens. Invalid 'max_tokens': integer below minimum value.",
        id="openai-context-length",
    ),
    pytest.param("max_tokens=100 exceeded", id="max-tokens-existing"),
    pytest.param("rate limit: 600 rpm", id="rate-limit-existing"),
    pytest.param(
        "3 of 12 content words not found in the context: Paris, 2019, inhabitants; the key point is answered; "
        "the secret sauce is patience; a password reset link was sent; token usage 1,234; the bearer of bad news",
        id="judge-reason-prose",
    ),
    pytest.param("AuthenticationError: Incorrect API key provided. OAuth consent required.", id="auth-error-no-key"),
    # Near misses from the detectors' own negative samples
    pytest.param("akiazzzzzzzzzzzzzzzz", id="aws-lowercase-detect-secrets"),
    pytest.param("AKIAZZZ", id="aws-too-short-detect-secrets"),
    pytest.param("TODAYINASIAASACKOFRICEFELLOVER", id="aws-inside-a-word-gitleaks"),
    pytest.param('msgstr "Näytä asiakirjamallikansio."', id="aws-lowercase-gitleaks"),
    pytest.param("foo_wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx", id="github-wrong-prefix-detect-secrets"),
    pytest.param("glpat_hellOworld380_testin", id="gitlab-wrong-separator-detect-secrets"),
    pytest.param("foo-hello-world80_testin", id="gitlab-wrong-prefix-detect-secrets"),
    pytest.param("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", id="jwt-header-only-detect-secrets"),
    pytest.param("eyJAAAA.eyJBBB", id="jwt-too-short-detect-secrets"),
    pytest.param("eyJBB.eyJCC.eyJDDDD", id="jwt-too-short-three-parts-detect-secrets"),
    pytest.param(
        "bm90X3ZhbGlkX2pzb25fYXRfYWxs.bm90X3ZhbGlkX2pzb25fYXRfYWxs.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        id="jwt-not-json-detect-secrets",
    ),
    pytest.param("sk_live_", id="stripe-prefix-only-detect-secrets"),
    pytest.param('nonMatchingToken := "task_test_8AEhjEjBGzFLc2bRvQNJW8OaDjFd5mO"', id="stripe-inside-a-word-gitleaks"),
    pytest.param(
        "https://docs.google.com/document/d/1W7KCxOxP-1Fy5EyF2lbJGE2WuKmu5v0suYqoHas1jRM", id="slack-lookalike-gitleaks"
    ),
    pytest.param(
        "GWw4hjABFzZCGiRpmlDyDdo87Jn9BN9THUA47muVRNunLxsa82tMAdvmrhOqNkRKiYMEAFbTJAIzaTesb6Tscfcni8vIpWZqNCXFDFslJtVSvFDq",
        id="google-inside-a-word-gitleaks",
    ),
    pytest.param("AIZASYCO2CXRMC9ELSKLHLHRMBSWDEVEDZTLO2O", id="google-wrong-case-gitleaks"),
    pytest.param(
        "![img](https://p3-juejin.byteimg.com/tos-cn-i-k3u1fbpfcp/6a9e704af49b4380bb686f0c96d33b81~tplv-k3u1fbpfcp-watermark.image)",
        id="azure-lookalike-image-url-gitleaks",
    ),
    pytest.param(
        "'url': 'http://www.2doc.nl/speel~VARA_101375237~mh17-het-verdriet-van-nederland~.html',",
        id="azure-lookalike-tilde-url-gitleaks",
    ),
    pytest.param(".ui.visible.right.sidebar~.ui.visible.left.sidebar~.pusher{transform:translate3d(0,0,0)}", id="css"),
    pytest.param(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQENBFOrMNcBCAC+gLI4s3bUkobS5NpOQbWfjWXbqC0Ixpc5bZYDOvsmfstmswna\n"
        "-----END PGP PUBLIC KEY BLOCK-----",
        id="pgp-public-key-gitleaks",
    ),
    pytest.param(
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQsw\n", id="certificate"
    ),
]


@pytest.mark.parametrize(("text", "secret"), CREDENTIALS)
def test_scrub_replaces_each_credential_format(text: str, secret: str) -> None:
    """Every credential format of the corpus is replaced, whatever surrounds it."""
    assert secret in text  # the sample says what must go
    for framed in (text, f"Error: {text} (while calling the model)", f"{text}\n{text}"):
        scrubbed = scrub(framed)
        assert secret not in scrubbed, scrubbed
        assert REDACTED in scrubbed


@pytest.mark.parametrize("text", ORDINARY)
def test_scrub_keeps_ordinary_text(text: str) -> None:
    """Ids, hashes, model names, URLs without a password, provider errors and the detectors' near misses stay."""
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            f"could not connect to {DB_URL}",
            "could not connect to postgresql://monitor:[REDACTED]@db.internal:5432/llm",
            id="url-keeps-user-and-host",
        ),
        pytest.param("password=hunter22; retry", "password=[REDACTED]; retry", id="key-value-keeps-key"),
        pytest.param(f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED]", id="bearer-keeps-scheme"),
        pytest.param(
            "https://hooks.slack.com/services/T0/B0/abcdefghijklmnopqrstuvwx",
            "https://hooks.slack.com/services/[REDACTED]",
            id="webhook-keeps-host",
        ),
        pytest.param(
            f"401 from api.github.com with {GITHUB_TOKEN}: Bad credentials",
            "401 from api.github.com with [REDACTED]: Bad credentials",
            id="token-keeps-message",
        ),
        pytest.param(f"before\n{PRIVATE_KEY}\nafter", "before\n[REDACTED]\nafter", id="pem-block-whole"),
    ],
)
def test_scrub_keeps_what_names_the_credential(text: str, expected: str) -> None:
    """Only the secret goes: the key name, URL user and host, auth scheme and the rest of the message stay readable."""
    assert scrub(text) == expected


@pytest.mark.parametrize(("text", "secret"), CREDENTIALS)
def test_scrub_is_idempotent(text: str, secret: str) -> None:
    """Scrubbing scrubbed text changes nothing, so layers that each scrub (pipeline, store, outbox) agree."""
    once = scrub(text)
    assert scrub(once) == once


def test_describe_error_and_clip_scrub_before_cutting() -> None:
    """A secret that straddles the length limit is not cut into a fragment that no rule recognises."""
    error = PermissionError("x" * 280 + f" {GITHUB_TOKEN} denied")
    described = describe_error(error)
    assert len(described) == 300 and "wWPw5k4a" not in described and "ghp_" not in described
    clipped = clip("y" * 290 + f" {AWS_KEY_ID}", 300)
    assert clipped is not None and "AKIA" not in clipped
    assert clip(None, 10) is None


def test_scrub_stays_fast_on_text_without_secrets() -> None:
    """Per error and per evaluation: a 300-char error and a 2,000-char judge reason take well under a millisecond."""
    call = "APIConnectionError: Connection error calling https://api.openai.com/v1/chat/completions (model="
    error = (call * 4)[:300]
    reason = ("3 of 12 content words not found in the context: Paris, 2019, inhabitants; relevance 4; " * 30)[:2000]
    for text in (error, reason):
        seconds = min(timeit.repeat(lambda text=text: scrub(text), number=50, repeat=3)) / 50
        assert seconds < 1e-3, f"{len(text)} chars took {seconds * 1e6:.0f} µs"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x://a:" * 4_000, id="url-without-at"),
        pytest.param("password" + " " * 20_000 + "=", id="key-then-spaces"),
        pytest.param("eyJ" + "a" * 20_000 + ".", id="jwt-header-only"),
        pytest.param("-----BEGIN PRIVATE KEY-----" * 1_000, id="unterminated-blocks"),
        pytest.param("aws secret key " * 2_000, id="aws-context-without-key"),
        pytest.param("Bearer " * 4_000, id="bearer-without-token"),
    ],
)
def test_scrub_has_no_pathological_input(text: str) -> None:
    """No pattern backtracks badly: 20,000+ characters built to provoke it are scrubbed in well under a second."""
    started = time.perf_counter()
    scrub(text)
    assert time.perf_counter() - started < 0.5


# End to end through a Monitor with a store -------------------------------------------------------------------------


ERROR_MESSAGE = f"upstream refused key {AWS_KEY_ID}, token {GITHUB_TOKEN}, session {JWT} for {DB_URL}"


class LeakingModel(GenericFakeChatModel):
    """A model whose provider error quotes credentials, as a misconfigured client or proxy does."""

    model_name: str = "gpt-4o-mini"

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(ERROR_MESSAGE)


def fragments(secret: str) -> list[str]:
    """The pieces a judge's reason could quote (the offline judge splits text into letter and digit runs)."""
    return [piece for piece in re.findall(r"[^\W\d_]+|\d+", secret) if len(piece) >= 6]


def assert_no_secret(where: str, text: str) -> None:
    """None of the leaked credentials, whole or in quotable pieces."""
    for secret in LEAKED:
        assert secret not in text, f"{secret} in {where}"
        for piece in fragments(secret):
            assert piece not in text, f"{piece} (of {secret}) in {where}"


def stored_text(path: Path) -> str:
    """Every row of every table of a SQLite store, as text."""
    with closing(sqlite3.connect(path)) as database:
        tables = [name for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [row for table in tables for row in database.execute(f'SELECT * FROM "{table}"')]
    assert tables and rows
    return "\n".join(map(repr, rows))


def test_a_model_error_quoting_credentials_reaches_no_log_row_or_metric(registry, logs, tmp_path: Path) -> None:
    """An exception carrying an AWS key, a GitHub token, a JWT and a URL password leaves no trace of them."""
    assert all(secret in f"RuntimeError: {ERROR_MESSAGE}"[:300] for secret in LEAKED[:4])  # the cut alone hides none
    path = tmp_path / "m.db"
    monitor = Monitor(registry=registry, logger=logs.logger, store=path, sample_rate=1.0)
    chain = PROMPT | LeakingModel(messages=iter(())) | StrOutputParser()
    with pytest.raises(RuntimeError):
        chain.invoke({"question": "which key?"}, config={"callbacks": [monitor]})
    assert monitor.flush(10)
    monitor.close()

    assert_no_secret("the logs", json.dumps(logs.events, default=str))
    assert_no_secret("the store", stored_text(path))
    assert_no_secret("the metrics", generate_latest(registry).decode())
    [call] = logs.named("llm_call")  # and the message still says what failed
    assert call["error"].startswith("RuntimeError: upstream refused key [REDACTED], token [REDACTED]")
    assert "postgresql://monitor:[REDACTED]@db.internal" in call["error"]


def test_a_judge_reason_quoting_a_secret_reaches_no_log_row_or_outbox(registry, logs, tmp_path: Path) -> None:
    """An answer quoting credentials is judged on scrubbed text: logs, evaluations, jobs and outbox stay clean."""
    question = "What are the credentials of the billing service?"
    answer = f"Use {AWS_KEY_ID} with {STRIPE_KEY}, post to Slack as {SLACK_TOKEN}, and the database at {DB_URL}."
    raw_reason = OfflineJudge().evaluate(EvaluationInput(question, (), answer)).scores.reason
    assert any(piece in raw_reason for secret in LEAKED for piece in fragments(secret))  # unscrubbed, it would leak
    path = tmp_path / "m.db"
    config = MonitorConfig.from_mapping(
        {"sampling": {"evaluate_without_context": True}, "store": {"url": str(path), "outbox": True}}
    )
    monitor = Monitor(config, registry=registry, logger=logs.logger, judge=OfflineJudge(), sample_rate=1.0)
    chain = PROMPT | fake_model(answer) | StrOutputParser()
    assert chain.invoke({"question": question}, config={"callbacks": [monitor]}) == answer
    assert monitor.flush(10)
    assert monitor.store is not None
    outbox = monitor.store.pending_items()
    monitor.close()

    [event] = logs.named("quality_eval")
    assert event["status"] == "success" and "REDACTED" in event["reason"]
    assert {item.payload["comment"] for item in outbox} == {event["reason"]}
    assert_no_secret("the logs", json.dumps(logs.events, default=str))
    assert_no_secret("the outbox", json.dumps([item.payload for item in outbox]))
    assert_no_secret("the store", stored_text(path))
    assert_no_secret("the metrics", generate_latest(registry).decode())


def evaluation(reason: str) -> EvaluationRecord:
    """A successful evaluation whose reason is `reason`."""
    run_id = str(uuid.uuid4())
    return EvaluationRecord(
        run_id=run_id,
        trace_id=run_id,
        judge="external",
        judge_model="model-v1",
        prompt_version="1",
        sampling="random",
        sample_reason="rate",
        status="success",
        faithfulness=2,
        hallucination=True,
        reason=reason,
    )


def test_outbox_errors_are_scrubbed_whoever_reports_them(tmp_path: Path) -> None:
    """`mark_failed` and `mark_dead` store a scrubbed `last_error`, even from a caller that did not scrub it."""
    store = Store(str(tmp_path / "m.db"))
    store.outbox = True
    store.add_evaluation(evaluation("fine"))
    failed, dead = [item.id for item in store.pending_items()][:2]
    store.mark_failed(failed, f"HTTP 401: bad token {GITHUB_TOKEN}", utcnow())
    store.mark_dead(dead, f"HTTP 403: {DB_URL} refused")
    errors = [store.outbox_item(failed).last_error, store.outbox_item(dead).last_error]  # type: ignore[union-attr]
    store.close()
    assert errors == [
        "HTTP 401: bad token [REDACTED]",
        "HTTP 403: postgresql://monitor:[REDACTED]@db.internal:5432/llm refused",
    ]


def test_judge_and_user_comments_are_scrubbed_before_they_are_stored_or_sent(tmp_path: Path) -> None:
    """A judge's reason and a user's comment may both quote a credential: neither is stored or sent with it; the
    rest of the user's words stay."""
    items = judge_feedback_items(evaluation(f"the answer leaks {STRIPE_KEY}"))
    assert {item.payload["comment"] for item in items} == {"the answer leaks [REDACTED]"}
    store = Store(tmp_path / "m.db")
    run_id = str(uuid.uuid4())
    store.add_invocations(
        [
            InvocationRecord(
                run_id=run_id,
                trace_id=run_id,
                name="rag",
                status="success",
                started_at=datetime.now(UTC),
                latency_s=1.0,
            )
        ]
    )
    recorder = FeedbackRecorder(store, registry=CollectorRegistry())
    stored = recorder.record(run_id, score=-1, comment="my password=hunter22 was shown to me, please remove")
    assert stored.comment == "my password=[REDACTED] was shown to me, please remove"
    assert [item.payload["comment"] for item in store.pending_items()] == [stored.comment]
    store.close()


# Personal data: opt-in redactors for CaptureConfig(redact=...) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("write to alice.smith+tag@example.co.uk today", "write to [email] today", id="email"),
        pytest.param("bob@mail.example.com, carol@example.org.", "[email], [email].", id="emails-in-a-list"),
        pytest.param(
            "a@b, user@localhost, @mention, v1.2@beta", "a@b, user@localhost, @mention, v1.2@beta", id="no-domain"
        ),
    ],
)
def test_email_redaction(text: str, expected: str) -> None:
    """Addresses with a domain and a top-level domain become `[email]`; handles and bare hosts stay."""
    assert redact_emails(text) == EMAILS(text) == expected


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("+44 20 7946 0958", id="uk-international"),
        pytest.param("+1 (415) 555-0132", id="us-international"),
        pytest.param("+33 6 12 34 56 78", id="fr-international"),
        pytest.param("+4915123456789", id="de-international-no-separators"),
        pytest.param("(415) 555-0132", id="us-parentheses"),
        pytest.param("415-555-0132", id="us-dashes"),
        pytest.param("415.555.0132", id="us-dots"),
        pytest.param("1-800-555-0199", id="us-toll-free"),
        pytest.param("06 12 34 56 78", id="fr-national"),
        pytest.param("020 7946 0958", id="uk-national"),
        pytest.param("030 12345678", id="de-national"),
    ],
)
def test_phone_redaction(number: str) -> None:
    """International numbers and national ones written with separators become `[phone]`."""
    assert redact_phones(f"call {number} now") == PHONES(f"call {number} now") == "call [phone] now"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("order 1234567890 shipped", id="order-id"),
        pytest.param("price $1,299.99 or 1.299,99 €", id="prices"),
        pytest.param("in 2024, on 05.12.2024 13:45, at 2026-03-02T09:30:15", id="dates"),
        pytest.param("host 192.168.100.200 port 8080", id="ip-address"),
        pytest.param("run 3f2b9c1e-8d4a-4e1b-9f3c-2a7d5e6b8c90 at 1718035200000", id="uuid-and-timestamp"),
        pytest.param("+15 points, v0.12.3, 3+4=7, ISBN 978-3-16-148410-0", id="small-numbers-and-versions"),
        pytest.param("4111 1111 1111 1111", id="card-is-not-a-phone"),
    ],
)
def test_phone_redaction_keeps_other_numbers(text: str) -> None:
    """Prices, years, dates, order ids, IPs, timestamps and versions are not phone numbers."""
    assert redact_phones(text) == text


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("4111 1111 1111 1111", id="visa-spaces"),
        pytest.param("4111-1111-1111-1111", id="visa-dashes"),
        pytest.param("4111111111111111", id="visa-plain"),
        pytest.param("5500 0000 0000 0004", id="mastercard"),
        pytest.param("2223 0031 2200 3222", id="mastercard-2-series"),
        pytest.param("3782 822463 10005", id="amex"),
        pytest.param("6011111111111117", id="discover"),
    ],
)
def test_card_redaction(number: str) -> None:
    """Card numbers that pass the Luhn check and start like an issuer's become `[card]`."""
    assert redact_cards(f"paid with {number}.") == CARDS(f"paid with {number}.") == "paid with [card]."


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("4111 1111 1111 1112", id="luhn-fails"),
        pytest.param("1234567812345670", id="luhn-passes-no-issuer"),
        pytest.param("ISBN 9780306406157", id="isbn"),
        pytest.param("at 1718035200000 ms", id="timestamp"),
        pytest.param("total 4111.11, 4000-1234", id="short-numbers"),
    ],
)
def test_card_redaction_keeps_other_numbers(text: str) -> None:
    """Numbers that fail the checksum or the issuer prefix stay."""
    assert redact_cards(text) == text


def test_redactor_composes_kinds_and_the_applications_functions() -> None:
    """Built-in kinds run first (cards before phones), then the application's functions, in order."""
    mask_ids = lambda text: re.sub(r"CUST-\d+", "[customer]", text)  # noqa: E731
    redact = Redactor(mask_ids, emails=True, phones=True, cards=True)
    text = "CUST-42 (bob@example.com, +1 415 555 0132) paid with 4111 1111 1111 1111"
    assert redact(text) == "[customer] ([email], [phone]) paid with [card]"
    assert PERSONAL_DATA(text) == "CUST-42 ([email], [phone]) paid with [card]"
    assert Redactor(EMAILS, CARDS)(text) == "CUST-42 ([email], +1 415 555 0132) paid with [card]"
    assert repr(redact) == "Redactor(<lambda>, emails=True, phones=True, cards=True)"
    assert langchain_llmmonitor.Redactor is Redactor and "Redactor" in langchain_llmmonitor.__all__
    with pytest.raises(TypeError, match="functions from text to text"):
        Redactor("emails")  # type: ignore[arg-type]


class RecordingJudge:
    """Keeps what it was shown."""

    name = "recording"
    model = "recording-v1"
    prompt_version = "1"

    def __init__(self) -> None:
        self.items: list[EvaluationInput] = []

    def evaluate(self, item: EvaluationInput) -> Verdict:
        self.items.append(item)
        return Verdict(
            Scores(5, 5, 5, False, "ok"), judge=self.name, model=self.model, prompt_version=self.prompt_version
        )


def test_captured_text_is_redacted_then_scrubbed_before_the_judge(registry, logs) -> None:
    """The judge sees the application's redaction and never a credential, whatever `redact` does."""
    judge = RecordingJudge()
    config = MonitorConfig(
        capture=CaptureConfig(redact=Redactor(emails=True)), sampling=SamplingConfig(evaluate_without_context=True)
    )
    monitor = Monitor(config, registry=registry, logger=logs.logger, judge=judge, sample_rate=1.0)
    answer = f"Mail alice@example.com the key {AWS_KEY_ID}"
    (PROMPT | fake_model(answer) | StrOutputParser()).invoke(
        {"question": f"my token is {GITHUB_TOKEN}"}, config={"callbacks": [monitor]}
    )
    assert monitor.flush(10)
    [item] = judge.items
    assert item.question == "my token is [REDACTED]"
    assert item.answer == "Mail [email] the key [REDACTED]"
