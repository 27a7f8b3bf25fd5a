module komputer-connector-webhook/test/node/probe

go 1.26.0
