module komputer.ai/connector-webhook/test/operator-json

go 1.26
