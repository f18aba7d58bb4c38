fn main() {
    println!("ssm-session-audit: under construction");
}
