/* gov_daemon.c - ccr-gov (being written). */
int main(void)
{
    return 1;
}
