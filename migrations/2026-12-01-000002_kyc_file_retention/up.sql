-- Files of rejected submissions are deleted after a retention period; the row (type,
-- size, digest, decision) stays as the record of what was submitted and decided.
ALTER TABLE kyc_submissions ADD COLUMN file_purged_at timestamptz;
CREATE INDEX kyc_submissions_rejected_files ON kyc_submissions (reviewed_at)
    WHERE status = 'rejected' AND file_purged_at IS NULL;
