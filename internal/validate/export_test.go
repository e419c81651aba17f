package validate

// MaxMetaLen exposes the metadata string limit to the external tests.
const MaxMetaLen = maxMetaLen
