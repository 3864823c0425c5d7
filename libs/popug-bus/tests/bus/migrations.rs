//! Replicas starting together create and migrate their database once.

use diesel_async::RunQueryDsl as _;

#[tokio::test]
async fn replicas_starting_together_create_and_migrate_their_database_once() {
    let database = popug_testing::TestDatabase::fresh();
    let url: url::Url = database.url().parse().expect("url");
    let connect = || popug_runtime::database::connect(&url, 2, &[&popug_bus::MIGRATIONS]);
    let (first, second) = tokio::join!(connect(), connect());
    let pool = first.expect("first replica");
    second.expect("second replica");
    let mut conn = pool.get().await.expect("connection");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let applied = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result::<Count>(&mut conn)
        .await
        .expect("migrations table");
    // Each of the bus's migrations once.
    let embedded =
        diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&popug_bus::MIGRATIONS)
            .expect("embedded migrations")
            .len();
    assert_eq!(applied.n, i64::try_from(embedded).expect("a few"));
}
