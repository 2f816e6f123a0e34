//! Storage: metadata in an ordered key-value store, file contents in a content-addressed blob
//! store. Both sit behind small traits; sled and the local disk are the embedded defaults,
//! PostgreSQL (`pg_meta`) and an S3 bucket (`s3_blobs`) what several replicas share.

pub mod blobs;
pub mod checksum;
pub mod chunk_pool;
pub mod copy;
pub mod group_commit;
pub mod keys;
pub mod local_blobs;
pub mod meta;
pub mod pg_meta;
pub mod s3_blobs;
mod s3_writer;
pub mod sled_meta;
pub mod upgrade;
